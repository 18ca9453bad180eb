/// One expert of a ternary-domain merge: a sign-form ``TernaryCode`` and its scale, standing for
/// the residual `±scale` at the code's mask positions and 0 elsewhere.
public struct TernaryExpert: Sendable, Equatable {
    public var code: TernaryCode
    public var scale: Float

    /// - Precondition: `code` stores signs, not values; `scale` is finite.
    public init(code: TernaryCode, scale: Float) {
        precondition(code.values.isEmpty, "a ternary merge needs sign-form codes, not sparse values")
        precondition(scale.isFinite, "scale \(scale) is not finite")
        self.code = code
        self.scale = scale
    }

    /// The dense residual this expert stands for (what ``TernaryCode/decode(scale:into:)`` writes).
    public func expanded() -> [Float] {
        [Float](unsafeUninitializedCapacity: code.count) { buffer, initialized in
            code.decode(scale: scale, into: buffer)
            initialized = code.count
        }
    }
}
