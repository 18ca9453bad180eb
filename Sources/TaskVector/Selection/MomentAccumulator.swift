/// Count, mean and sum of squared deviations of a stream of values, in double precision.
///
/// Each chunk is reduced exactly in two passes and chunks are combined with Chan et al.'s update, so
/// the variance is accurate even when the mean is far from zero, in a single pass over the data.
public struct MomentAccumulator: Sendable, Equatable {
    public private(set) var count: Int = 0
    public private(set) var mean: Double = 0
    /// Σ (x − mean)².
    public private(set) var m2: Double = 0
    /// Σ x², kept separately for norm computations.
    public private(set) var sumOfSquares: Double = 0

    public init() {}

    /// Adds a chunk of values.
    ///
    /// Within a chunk, the values are shifted by the chunk's first value c (exact in double), Σ(x−c)
    /// and Σ(x−c)² are accumulated in double precision in four independent lanes (so the loop
    /// vectorizes), and M2 = Σ(x−c)² − (Σ(x−c))²/n; chunks are then merged with Chan's update. The shift
    /// keeps the in-chunk cancellation small even when the mean is far from zero.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let n = values.count
        guard n > 0, let base = values.baseAddress else { return }
        let c = Double(base[0])
        let shift = SIMD4<Double>(repeating: c)
        var s = SIMD4<Double>.zero
        var q = SIMD4<Double>.zero
        let vectors = n / 4
        let raw = UnsafeRawPointer(base)
        for i in 0..<vectors {
            let v = SIMD4<Double>(raw.loadUnaligned(fromByteOffset: i &* 16, as: SIMD4<Float>.self))
            let d = v - shift
            s += d
            q += d * d
        }
        var sum = (s[0] + s[1]) + (s[2] + s[3])
        var shiftedSquares = (q[0] + q[1]) + (q[2] + q[3])
        for i in (vectors * 4)..<n {
            let v = Double(base[i])
            let d = v - c
            sum += d
            shiftedSquares += d * d
        }
        addChunk(count: n, shift: c, shiftedSum: sum, shiftedSquares: shiftedSquares)
    }

    /// Adds a chunk of `n` values given Σ(x−c) and Σ(x−c)² for a shift c; ``add(_:)`` and the fused
    /// first pass of ``ThresholdSelector`` both end here, so they give identical results.
    mutating func addChunk(count n: Int, shift c: Double, shiftedSum sum: Double, shiftedSquares: Double) {
        guard n > 0 else { return }
        // Σx² = Σ(x−c)² + 2cΣ(x−c) + n·c², exact enough for a norm (all terms are well conditioned here).
        let squares = shiftedSquares + 2 * c * sum + Double(n) * c * c
        let shiftedMean = sum / Double(n)
        let chunkM2 = max(0, shiftedSquares - sum * shiftedMean)
        merge(count: n, mean: c + shiftedMean, m2: chunkM2, sumOfSquares: squares)
    }

    /// Combines another accumulator into this one.
    public mutating func merge(_ other: MomentAccumulator) {
        merge(count: other.count, mean: other.mean, m2: other.m2, sumOfSquares: other.sumOfSquares)
    }

    private mutating func merge(count n: Int, mean otherMean: Double, m2 otherM2: Double, sumOfSquares otherSquares: Double) {
        guard n > 0 else { return }
        if count == 0 {
            count = n
            mean = otherMean
            m2 = otherM2
            sumOfSquares = otherSquares
            return
        }
        let total = count + n
        let delta = otherMean - mean
        mean += delta * Double(n) / Double(total)
        m2 += otherM2 + delta * delta * Double(count) * Double(n) / Double(total)
        count = total
        sumOfSquares += otherSquares
    }

    /// Unbiased standard deviation (divides by count − 1); 0 for fewer than two values.
    public var standardDeviation: Double {
        count > 1 ? (max(m2, 0) / Double(count - 1)).squareRoot() : 0
    }

    /// Euclidean norm of all values.
    public var norm: Double { sumOfSquares.squareRoot() }
}
