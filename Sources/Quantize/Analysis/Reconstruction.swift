/// How close a reconstruction τ̂ is to the residual τ, kept as sums so that the figures of several
/// tensors combine exactly.
///
/// The ratios are `nil` where they are undefined: every one when ‖τ‖ = 0, and the cosine also when
/// ‖τ̂‖ = 0.
public struct Reconstruction: Sendable, Equatable {
    /// The scale s of a ternary reconstruction; `nil` for an exact or pruned one, or for a combination
    /// of parts that used different scales.
    public var scale: Double?
    /// ‖τ̂ − τ‖².
    public var squaredError: Double
    /// ⟨τ̂, τ⟩.
    public var inner: Double
    /// ‖τ̂‖².
    public var squaredNorm: Double
    /// ‖τ‖².
    public var referenceSquaredNorm: Double

    public init(scale: Double?, squaredError: Double, inner: Double, squaredNorm: Double, referenceSquaredNorm: Double) {
        self.scale = scale
        self.squaredError = squaredError
        self.inner = inner
        self.squaredNorm = squaredNorm
        self.referenceSquaredNorm = referenceSquaredNorm
    }

    /// The empty reconstruction of nothing (the identity of ``combined(with:)``).
    public static let empty = Reconstruction(scale: nil, squaredError: 0, inner: 0, squaredNorm: 0, referenceSquaredNorm: 0)

    /// ‖τ̂ − τ‖ / ‖τ‖.
    public var relativeError: Double? {
        referenceSquaredNorm > 0 ? (squaredError / referenceSquaredNorm).squareRoot() : nil
    }

    /// ⟨τ̂, τ⟩ / (‖τ̂‖·‖τ‖).
    public var cosine: Double? {
        referenceSquaredNorm > 0 && squaredNorm > 0
            ? min(1, max(-1, inner / (squaredNorm.squareRoot() * referenceSquaredNorm.squareRoot()))) : nil
    }

    /// ‖τ̂‖ / ‖τ‖: 1 when the reconstruction keeps the norm, below 1 when it under-scales.
    public var normRatio: Double? {
        referenceSquaredNorm > 0 ? (squaredNorm / referenceSquaredNorm).squareRoot() : nil
    }

    /// The reconstruction of two disjoint parts of a vector side by side.
    public func combined(with other: Reconstruction) -> Reconstruction {
        let scale: Double? =
            if referenceSquaredNorm == 0 && squaredNorm == 0 && self.scale == nil { other.scale }
            else if self.scale == other.scale { self.scale }
            else { nil }
        return Reconstruction(scale: scale, squaredError: squaredError + other.squaredError, inner: inner + other.inner,
                              squaredNorm: squaredNorm + other.squaredNorm,
                              referenceSquaredNorm: referenceSquaredNorm + other.referenceSquaredNorm)
    }
}
