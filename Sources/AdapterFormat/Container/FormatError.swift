/// A container that cannot be read or written: every case names the file and, where it applies,
/// the tensor.
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// Not a compeft container, or a structure that does not parse.
        case malformed
        /// A checksum did not match: the data is corrupt.
        case checksum
        /// A version or encoding this build does not know.
        case unsupported
        /// Reading or writing failed.
        case io
    }

    public var code: Code
    public var file: String
    public var tensor: String?
    public var message: String

    public init(_ code: Code, file: String, tensor: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor { return "\(file): tensor '\(tensor)': \(message)" }
        return "\(file): \(message)"
    }
}
