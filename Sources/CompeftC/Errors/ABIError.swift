import AdapterFormat
import CCompeft
import Commands
import TaskVector

/// A failed C call: the `compeft_status` it returns and the message `compeft_last_error()` then gives.
struct ABIError: Error, CustomStringConvertible {
    var status: compeft_status
    var message: String

    var description: String { message }

    static func invalidArgument(_ message: String) -> ABIError { ABIError(status: .invalidArgument, message: message) }
    static func badHandle(_ handle: compeft_handle) -> ABIError {
        ABIError(status: .badHandle, message: "handle 0x\(String(handle, radix: 16)) is not open (never opened, or already closed)")
    }
    static func notFound(_ message: String) -> ABIError { ABIError(status: .notFound, message: message) }
    static func bufferTooSmall(_ message: String) -> ABIError { ABIError(status: .bufferTooSmall, message: message) }
    static func unsupported(_ message: String) -> ABIError { ABIError(status: .unsupported, message: message) }

    /// Runs `body`, turning a ``SettingsError`` into INVALID_ARGUMENT that names `function` and the
    /// settings as options-object keys (`out_density`).
    static func settings<T>(_ function: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SettingsError {
            throw ABIError.invalidArgument("\(function): \(error.message(.key))")
        }
    }

    /// The status and message for any error the Swift API throws.
    init(_ error: any Error) {
        switch error {
        case let error as ABIError:
            self = error
        case let error as FormatError:
            let status: compeft_status = switch error.code {
            case .malformed, .checksum: .corrupt
            case .unsupported: .unsupported
            case .io: .io
            }
            self.init(status: status, message: error.description)
        case let error as TaskVectorError:
            let status: compeft_status = switch error.code {
            case .io: .io
            case .unsupported: .unsupported
            case .malformed, .mismatch, .nonFinite: .corrupt
            }
            self.init(status: status, message: error.description)
        default:
            self.init(status: .corrupt, message: "\(error)")
        }
    }

    init(status: compeft_status, message: String) {
        self.status = status
        self.message = message
    }
}

extension compeft_status {
    static let ok = compeft_status(COMPEFT_OK)
    static let invalidArgument = compeft_status(COMPEFT_ERR_INVALID_ARGUMENT)
    static let badHandle = compeft_status(COMPEFT_ERR_BAD_HANDLE)
    static let notFound = compeft_status(COMPEFT_ERR_NOT_FOUND)
    static let bufferTooSmall = compeft_status(COMPEFT_ERR_BUFFER_TOO_SMALL)
    static let corrupt = compeft_status(COMPEFT_ERR_CORRUPT)
    static let unsupported = compeft_status(COMPEFT_ERR_UNSUPPORTED)
    static let io = compeft_status(COMPEFT_ERR_IO)
}

/// Runs the body of one C entry point: a thrown error becomes its status, and its message the calling
/// thread's last error. Nothing escapes as a trap or an exception.
func withStatus(_ body: () throws -> Void) -> compeft_status {
    do {
        try body()
        return .ok
    } catch {
        let failure = ABIError(error)
        LastError.set(failure.message)
        return failure.status
    }
}
