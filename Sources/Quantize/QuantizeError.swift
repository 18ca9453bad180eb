/// An error found while quantizing: bad options or values that cannot be compressed.
public struct QuantizeError: Error, CustomStringConvertible, Sendable, Equatable {
    public var tensor: String?
    public var message: String

    public init(tensor: String? = nil, _ message: String) {
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor { return "tensor '\(tensor)': \(message)" }
        return message
    }
}
