/// An error reading, validating or combining tensors. Every case says which file and which tensor.
public struct TaskVectorError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        case io
        case malformed
        case unsupported
        case mismatch
        case nonFinite
    }

    public var code: Code
    public var file: String?
    public var tensor: String?
    public var message: String

    public init(_ code: Code, file: String? = nil, tensor: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}
