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
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let n = values.count
        guard n > 0 else { return }
        var sum = 0.0
        var squares = 0.0
        for v in values {
            let d = Double(v)
            sum += d
            squares += d * d
        }
        let chunkMean = sum / Double(n)
        var chunkM2 = 0.0
        for v in values {
            let d = Double(v) - chunkMean
            chunkM2 += d * d
        }
        merge(count: n, mean: chunkMean, m2: chunkM2, sumOfSquares: squares)
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
