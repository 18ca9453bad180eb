/// What thresholding does to one LoRA module's product ΔW = B·A, from r×r matrices only.
///
/// With the sign matrices Â, B̂ ∈ {−1, 0, 1} of the kept non-zero entries (|x| at or above each factor's
/// threshold), decoding gives the factors s_A·Â and s_B·B̂, so the decoded product is c·B̂Â with
/// c = s_A·s_B. Every figure of that product follows from four r×r matrices, never from the out × in
/// product itself:
///
/// - P = ‖B̂Â‖²_F = Σᵢⱼ (B̂ᵀB̂)ᵢⱼ (ÂÂᵀ)ᵢⱼ — integer Gram matrices, exact in `Int64`;
/// - I = ⟨B·A, B̂Â⟩_F = Σᵢⱼ (BᵀB̂)ᵢⱼ (AÂᵀ)ᵢⱼ — binary64;
/// - N = ‖B·A‖²_F, given (Σσᵢ² from the gauge transform, or ``normSquared(a:b:rank:)``);
/// - ‖B·A − c·B̂Â‖²_F = N − 2cI + c²P.
///
/// The norm-preserving product scale is c = √(N/P): then ‖c·B̂Â‖_F = ‖B·A‖_F.
public struct ModuleProduct: Sendable, Equatable {
    /// N = ‖B·A‖²_F.
    public var normSquared: Double
    /// I = ⟨B·A, B̂Â⟩_F.
    public var inner: Double
    /// P = ‖B̂Â‖²_F.
    public var ternaryNormSquared: Int64
    /// Values of A and of B at or above their threshold (zeros included), and the kept non-zero ones.
    public var keptA: Int
    public var nonzeroA: Int
    public var keptB: Int
    public var nonzeroB: Int

    /// The norm-preserving product scale √(N/P), or `nil` when P = 0 (no kept component survives in both
    /// factors: the decoded product is 0 at any scale).
    public var normPreservingScale: Double? {
        ternaryNormSquared > 0 ? (normSquared / Double(ternaryNormSquared)).squareRoot() : nil
    }

    /// The least-squares product scale I/P (the c minimising the error), or `nil` when P = 0.
    public var leastSquaresScale: Double? {
        ternaryNormSquared > 0 ? inner / Double(ternaryNormSquared) : nil
    }

    /// ‖B·A − c·B̂Â‖²_F = N − 2cI + c²P, clamped at 0 (rounding can take it a hair below).
    public func squaredError(scale c: Double) -> Double {
        max(0, normSquared - 2 * c * inner + c * c * Double(ternaryNormSquared))
    }

    /// Measures a module's factors under thresholds.
    ///
    /// Rows of B and columns of A are visited in order, so the sums are the same on every run.
    ///
    /// - Parameters:
    ///   - a: `lora_A`'s values, r × in row-major (the values that are thresholded: the gauge's, in binary32).
    ///   - b: `lora_B`'s values, out × r row-major.
    ///   - thresholdA, thresholdB: each factor's threshold as a magnitude bit pattern: a value is kept
    ///     when `bitPattern & 0x7FFF_FFFF` is at or above it.
    ///   - normSquared: N, recorded as it is.
    /// - Returns: `nil` when P does not fit in `Int64` (a module of more than about 10¹⁸ product entries
    ///   times r²; no real adapter comes near).
    /// - Precondition: `a.count` and `b.count` are multiples of `rank > 0`.
    /// - Complexity: O((in + out)·r) comparisons plus O(r) arithmetic per kept value and O(n²) per row
    ///   of B or column of A holding n kept values; O(r²) memory.
    public static func measure(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int,
                               thresholdA: UInt32, thresholdB: UInt32, normSquared: Double) -> ModuleProduct? {
        precondition(r > 0 && a.count % r == 0 && b.count % r == 0, "factors of \(a.count) and \(b.count) values for rank \(r)")
        var gramB = [Int64](repeating: 0, count: r * r)
        var crossB = [Double](repeating: 0, count: r * r)
        var gramA = [Int64](repeating: 0, count: r * r)
        var crossA = [Double](repeating: 0, count: r * r)
        var keptA = 0, nonzeroA = 0, keptB = 0, nonzeroB = 0
        // B: its rows are the vectors.
        RowAccumulator.run(rows: b.count / r, rank: r, threshold: thresholdB, gram: &gramB, cross: &crossB,
                           kept: &keptB, nonzero: &nonzeroB) { row, x in
            for k in 0..<r { x[k] = b[row &* r &+ k] }
        }
        // A: its columns, gathered a tile at a time so that each of the r rows is read in runs.
        let n = a.count / r
        let tile = 64
        var scratch = [Float](repeating: 0, count: tile * r)
        var tileStart = -1
        RowAccumulator.run(rows: n, rank: r, threshold: thresholdA, gram: &gramA, cross: &crossA,
                           kept: &keptA, nonzero: &nonzeroA) { column, x in
            let start = column - column % tile
            if start != tileStart {
                tileStart = start
                let width = min(tile, n - start)
                for i in 0..<r {
                    for c in 0..<width { scratch[c &* r &+ i] = a[i &* n &+ start &+ c] }
                }
            }
            let at = (column - start) &* r
            for k in 0..<r { x[k] = scratch[at &+ k] }
        }
        var p: Int64 = 0
        var inner = 0.0
        for i in 0..<(r * r) {
            let (product, o1) = gramB[i].multipliedReportingOverflow(by: gramA[i])
            let (sum, o2) = p.addingReportingOverflow(product)
            if o1 || o2 { return nil }
            p = sum
            inner += crossB[i] * crossA[i]
        }
        return ModuleProduct(normSquared: normSquared, inner: inner, ternaryNormSquared: p,
                             keptA: keptA, nonzeroA: nonzeroA, keptB: keptB, nonzeroB: nonzeroB)
    }

    /// N = ‖B·A‖²_F = Σᵢⱼ (BᵀB)ᵢⱼ (AAᵀ)ᵢⱼ from the r×r Gram matrices of the factors as given (binary64).
    ///
    /// - Precondition: `a.count` and `b.count` are multiples of `rank > 0`.
    public static func normSquared(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int) -> Double {
        precondition(r > 0 && a.count % r == 0 && b.count % r == 0, "factors of \(a.count) and \(b.count) values for rank \(r)")
        let n = a.count / r
        var gramB = [Double](repeating: 0, count: r * r)
        for row in 0..<(b.count / r) {
            for i in 0..<r {
                let x = Double(b[row &* r &+ i])
                if x == 0 { continue }
                for j in 0..<r { gramB[i &* r &+ j] += x * Double(b[row &* r &+ j]) }
            }
        }
        var total = 0.0
        for i in 0..<r {
            for j in 0..<r {
                var dot = 0.0
                for c in 0..<n { dot += Double(a[i &* n &+ c]) * Double(a[j &* n &+ c]) }
                total += gramB[i &* r &+ j] * dot
            }
        }
        return total
    }
}

/// Sums s·sᵀ (integer) and x·sᵀ (binary64) over vectors x of length r, where s is the sign vector of
/// x's kept non-zero entries: the Gram matrices of ``ModuleProduct``.
enum RowAccumulator {
    static func run(rows: Int, rank r: Int, threshold: UInt32, gram: inout [Int64], cross: inout [Double],
                    kept: inout Int, nonzero: inout Int, load: (Int, inout [Float]) -> Void) {
        var x = [Float](repeating: 0, count: r)
        var index = [Int](repeating: 0, count: r)
        var sign = [Int64](repeating: 0, count: r)
        for row in 0..<rows {
            load(row, &x)
            var n = 0
            for k in 0..<r {
                let bits = x[k].bitPattern
                let magnitude = bits & 0x7FFF_FFFF
                guard magnitude >= threshold else { continue }
                kept &+= 1
                guard magnitude != 0 else { continue }
                index[n] = k
                sign[n] = bits >> 31 == 0 ? 1 : -1
                n &+= 1
            }
            nonzero &+= n
            for p in 0..<n {
                let j = index[p]
                let sj = sign[p]
                for q in 0..<n { gram[j &* r &+ index[q]] &+= sj * sign[q] }
                let s = Double(sj)
                for k in 0..<r { cross[k &* r &+ j] += Double(x[k]) * s }
            }
        }
    }
}
