import Foundation

/// Refuses outputs that would land on (or inside) an input.
enum PathSafety {
    static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
    }

    /// Throws when `output` is one of `inputs`, or an input lies inside the `output` folder.
    static func checkOutput(_ output: String, isNotAnyOf inputs: [String]) throws {
        guard output != "-" else { return }
        let out = resolved(output)
        for input in inputs where input != "-" {
            let inp = resolved(input)
            if inp == out || inp.hasPrefix(out + "/") {
                throw CLIError(status: .ioError, message: "\(output): output would overwrite the input '\(input)'; choose another path")
            }
        }
    }
}

extension FileManager {
    func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}
