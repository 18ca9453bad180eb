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
}
