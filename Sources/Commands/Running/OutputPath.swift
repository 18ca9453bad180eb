import Foundation
public import TaskVector

/// Outputs never land on an input.
public enum OutputPath {
    /// Refuses `output` when it is one of `inputs` or an input lies inside it (a folder output would
    /// replace it). `-` (standard input or output) is never a file.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming the output and the input.
    public static func check(_ output: String, isNotAnyOf inputs: [String]) throws(TaskVectorError) {
        guard output != "-" else { return }
        func resolved(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path }
        let out = resolved(output)
        for input in inputs where input != "-" {
            let inp = resolved(input)
            if inp == out || inp.hasPrefix(out + "/") {
                throw TaskVectorError(.io, file: output, "output would overwrite the input '\(input)'; choose another path")
            }
        }
    }
}
