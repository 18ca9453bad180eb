import AdapterFormat
import Quantize
import TaskVector

extension CommandReports {
    /// The JSON a failed command prints with `--json` (`docs/schemas/error.schema.json`):
    /// `{"error": {"exit_code", "status", "message", "file"?, "tensor"?}}` — the exit code the process ends
    /// with, its name, the message stderr shows (without `compeft: error: `), and the file and tensor the
    /// error names, when it names them.
    ///
    /// - Parameters:
    ///   - error: what the command threw; a library error gives its file and tensor.
    ///   - exitCode: the process's exit code (`2` usage, `3` input, `4` I/O, …).
    ///   - status: that code's name (`usage`, `input-error`, `io-error`, …).
    ///   - message: the one-line message.
    public static func error(_ error: any Error, exitCode: Int32, status: String, message: String) -> [String: Any] {
        var body: [String: Any] = ["exit_code": Int(exitCode), "status": status, "message": message]
        switch error {
        case let e as TaskVectorError:
            body["file"] = e.file
            body["tensor"] = e.tensor
        case let e as FormatError:
            body["file"] = e.file
            body["tensor"] = e.tensor
        case let e as QuantizeError:
            body["tensor"] = e.tensor
        default:
            break
        }
        return ["error": body]
    }
}
