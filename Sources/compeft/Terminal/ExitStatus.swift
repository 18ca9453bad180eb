import AdapterFormat
import ArgumentParser
import Commands
import Exchange
import Quantize
import TaskVector

/// compeft's exit codes, documented in the README.
enum ExitStatus: Int32 {
    case ok = 0
    /// `verify` found a problem.
    case verificationFailed = 1
    /// Bad command line.
    case usage = 2
    /// The input is unreadable, malformed, corrupt or inconsistent.
    case inputError = 3
    /// Reading or writing a file failed (missing file, permission, disk full, output exists).
    case ioError = 4
    /// Registry work was cancelled through the API (`ExpertRegistry.cancelAll`); signals end the process instead (``Signals``).
    case interrupted = 130
}

extension ExitStatus {
    /// The status's name in a JSON error report (`"input-error"`).
    var name: String {
        switch self {
        case .ok: "ok"
        case .verificationFailed: "verification-failed"
        case .usage: "usage"
        case .inputError: "input-error"
        case .ioError: "io-error"
        case .interrupted: "interrupted"
        }
    }
}

/// An error the command line reports as one line and an exit code.
struct CLIError: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String
    var description: String { message }
}

extension ExitStatus {
    /// The status an error maps to.
    static func of(_ error: any Error) -> ExitStatus {
        switch error {
        case let e as CLIError: return e.status
        case let e as ExchangeError: return .of(e.code)
        case is SettingsError: return .usage
        case let e as TaskVectorError: return e.code == .io ? .ioError : .inputError
        case let e as FormatError: return e.code == .io ? .ioError : .inputError
        case is QuantizeError: return .inputError
        case is ZstdError: return .inputError
        default: return .inputError
        }
    }
}

extension ExitStatus {
    /// Registry failures: bad references and keys are usage errors; corrupt or unsigned experts input
    /// errors; everything about reaching the registry I/O errors.
    static func of(_ code: ExchangeError.Code) -> ExitStatus {
        switch code {
        case .usage: .usage
        case .integrity, .signature: .inputError
        case .notFound, .unauthorized, .network, .protocolViolation, .io: .ioError
        case .interrupted: .interrupted
        }
    }
}
