import Foundation

/// Path arguments of the writing functions.
enum PathArguments {
    /// A path argument as a Swift string: INVALID_ARGUMENT for NULL, empty, or `-` (the command line's
    /// standard input and output have no meaning inside a library).
    static func path(_ p: UnsafePointer<CChar>?, _ what: String, function: String) throws(ABIError) -> String {
        guard let p else { throw .invalidArgument("\(function): \(what) is NULL") }
        let s = String(cString: p)
        guard !s.isEmpty else { throw .invalidArgument("\(function): \(what) is empty") }
        guard s != "-" else {
            throw .invalidArgument("\(function): \(what) '-' would mean standard input or output, which a library call does not use; give a file path (./- for a file called '-')")
        }
        return s
    }

    /// IO when `output` is one of `inputs` or an input lies inside it (as the command line refuses).
    static func checkOutput(_ output: String, isNotAnyOf inputs: [String]) throws(ABIError) {
        func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
        let out = resolved(output)
        for input in inputs {
            let inp = resolved(input)
            if inp == out || inp.hasPrefix(out + "/") {
                throw ABIError(status: .io, message: "\(output): output would overwrite the input '\(input)'; choose another path")
            }
        }
    }
}
