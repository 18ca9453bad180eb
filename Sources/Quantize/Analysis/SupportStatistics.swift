/// Sums over one residual that describe it against a magnitude threshold: enough to give the error,
/// cosine and norm of its ternary reconstruction for any scale without holding the values.
///
/// A value is *kept* when its |τ| bit pattern is at or above the threshold's, the rule of
/// ``ThresholdSelector`` and ``TernaryCode``: ties at the threshold are kept, and a kept exact zero
/// (only when the threshold is 0) stays zero. The reconstruction τ̂ = s·sign(τ) on the kept non-zero
/// values and 0 elsewhere then has, with n kept non-zero values, A = Σ kept |τ|:
///
/// - ‖τ̂‖² = n·s² and ⟨τ̂, τ⟩ = s·A;
/// - ‖τ̂ − τ‖² = Σ dropped τ² + Σ kept (|τ| − s)².
///
/// The second sum is kept about a shift c (the scale the caller expects to use) as Σ(|τ| − c) and
/// Σ(|τ| − c)², so that for s = c it is exact and for s near c nothing cancels:
/// Σ(|τ| − s)² = Σ(|τ| − c)² + 2(c − s)·Σ(|τ| − c) + n·(c − s)². All sums are in double precision, so
/// ‖τ̂ − τ‖²/‖τ‖² is good to about 1e-16 absolute: a relative error ε near 0 to about 1e-8.
public struct SupportStatistics: Sendable, Equatable {
    /// Values seen, d.
    public private(set) var count = 0
    /// Values kept (|τ| ≥ t), kept zeros included.
    public private(set) var kept = 0
    /// Kept values that are not zero, n: the ones a ternary code stores.
    public private(set) var keptNonzero = 0
    /// Σ τ² over kept values.
    public private(set) var keptSumOfSquares = 0.0
    /// Σ τ² over dropped values.
    public private(set) var droppedSumOfSquares = 0.0
    /// Σ |τ| over kept values, A.
    public private(set) var keptAbsoluteSum = 0.0
    /// The shift c of the centred sums.
    public private(set) var shift: Double
    /// Σ (|τ| − c) over kept non-zero values.
    public private(set) var shiftedSum = 0.0
    /// Σ (|τ| − c)² over kept non-zero values.
    public private(set) var shiftedSquares = 0.0

    /// - Parameter shift: the scale the reconstruction is expected to use (any finite value works;
    ///   the closer, the less rounding).
    public init(shift: Double = 0) {
        precondition(shift.isFinite, "shift must be finite")
        self.shift = shift
    }

    /// Σ τ² over all values, ‖τ‖².
    public var sumOfSquares: Double { keptSumOfSquares + droppedSumOfSquares }

    /// Adds a chunk of finite values against the threshold with bit pattern `thresholdBits`.
    ///
    /// - Complexity: O(`values.count`).
    public mutating func add(_ values: UnsafeBufferPointer<Float>, thresholdBits: UInt32) {
        let c = shift
        var keptCount = 0
        var nonzero = 0
        var keptSquares = 0.0
        var droppedSquares = 0.0
        var absoluteSum = 0.0
        var centredSum = 0.0
        var centredSquares = 0.0
        for v in values {
            let bits = v.bitPattern & 0x7FFF_FFFF
            let a = Double(Float(bitPattern: bits))
            if bits >= thresholdBits {
                keptCount &+= 1
                if bits != 0 {
                    nonzero &+= 1
                    keptSquares += a * a
                    absoluteSum += a
                    let d = a - c
                    centredSum += d
                    centredSquares += d * d
                }
            } else {
                droppedSquares += a * a
            }
        }
        count += values.count
        kept += keptCount
        keptNonzero += nonzero
        keptSumOfSquares += keptSquares
        droppedSumOfSquares += droppedSquares
        keptAbsoluteSum += absoluteSum
        shiftedSum += centredSum
        shiftedSquares += centredSquares
    }

    /// Adds another residual's sums (for a group of tensors); its centred sums are moved to this shift.
    public mutating func merge(_ other: SupportStatistics) {
        let delta = other.shift - shift
        let n = Double(other.keptNonzero)
        // Σ(x − c) = Σ(x − c') + n·(c' − c); Σ(x − c)² = Σ(x − c')² + 2(c' − c)·Σ(x − c') + n·(c' − c)².
        shiftedSquares += other.shiftedSquares + 2 * delta * other.shiftedSum + n * delta * delta
        shiftedSum += other.shiftedSum + n * delta
        count += other.count
        kept += other.kept
        keptNonzero += other.keptNonzero
        keptSumOfSquares += other.keptSumOfSquares
        droppedSumOfSquares += other.droppedSumOfSquares
        keptAbsoluteSum += other.keptAbsoluteSum
    }

    /// Σ (|τ| − s)² over the kept non-zero values.
    public func keptSquaredDeviation(from s: Double) -> Double {
        let delta = shift - s
        return max(0, shiftedSquares + 2 * delta * shiftedSum + Double(keptNonzero) * delta * delta)
    }

    /// Mean |τ| of the kept non-zero values: the scale that minimises ‖τ̂ − τ‖ on this support
    /// (0 when nothing non-zero is kept).
    public var keptMeanMagnitude: Double {
        keptNonzero > 0 ? shift + shiftedSum / Double(keptNonzero) : 0
    }

    /// The ternary reconstruction τ̂ = s·sign(τ) on the kept non-zero values.
    public func ternary(scale s: Double) -> Reconstruction {
        Reconstruction(scale: s, squaredError: droppedSumOfSquares + keptSquaredDeviation(from: s),
                       inner: s * keptAbsoluteSum, squaredNorm: Double(keptNonzero) * s * s,
                       referenceSquaredNorm: sumOfSquares)
    }

    /// The pruned reconstruction: kept values unchanged, the rest 0.
    public var pruned: Reconstruction {
        Reconstruction(scale: nil, squaredError: droppedSumOfSquares, inner: keptSumOfSquares,
                       squaredNorm: keptSumOfSquares, referenceSquaredNorm: sumOfSquares)
    }

    /// The lossless reconstruction τ̂ = τ (a tensor the container stores exactly).
    public var exact: Reconstruction {
        Reconstruction(scale: nil, squaredError: 0, inner: sumOfSquares, squaredNorm: sumOfSquares,
                       referenceSquaredNorm: sumOfSquares)
    }
}
