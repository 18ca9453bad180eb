import TaskVector

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
        gramB.withUnsafeMutableBufferPointer { gramB in
            crossB.withUnsafeMutableBufferPointer { crossB in
                // B: its rows are the vectors.
                RowAccumulator.run(rows: b.count / r, rank: r, threshold: thresholdB, gram: gramB.baseAddress!,
                                   crossTransposed: crossB.baseAddress!, kept: &keptB, nonzero: &nonzeroB) { row, x in
                    x.update(from: b.baseAddress! + row &* r, count: r)
                }
            }
        }
        gramA.withUnsafeMutableBufferPointer { gramA in
            crossA.withUnsafeMutableBufferPointer { crossA in
                // A: its columns, gathered a tile at a time so that each of the r rows is read in runs.
                let n = a.count / r
                let tile = 64
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * r)
                defer { scratch.deallocate() }
                var tileStart = -1
                RowAccumulator.run(rows: n, rank: r, threshold: thresholdA, gram: gramA.baseAddress!,
                                   crossTransposed: crossA.baseAddress!, kept: &keptA, nonzero: &nonzeroA) { column, x in
                    let start = column - column % tile
                    if start != tileStart {
                        tileStart = start
                        let width = min(tile, n - start)
                        for i in 0..<r {
                            for c in 0..<width { scratch[c &* r &+ i] = a[i &* n &+ start &+ c] }
                        }
                    }
                    x.update(from: scratch + (column - start) &* r, count: r)
                }
            }
        }
        var p: Int64 = 0
        var inner = 0.0
        // Σ over (i, j) in row-major order; the cross matrices are held transposed.
        for i in 0..<r {
            for j in 0..<r {
                let (product, o1) = gramB[i &* r &+ j].multipliedReportingOverflow(by: gramA[i &* r &+ j])
                let (sum, o2) = p.addingReportingOverflow(product)
                if o1 || o2 { return nil }
                p = sum
                inner += crossB[j &* r &+ i] * crossA[j &* r &+ i]
            }
        }
        return ModuleProduct(normSquared: normSquared, inner: inner, ternaryNormSquared: p,
                             keptA: keptA, nonzeroA: nonzeroA, keptB: keptB, nonzeroB: nonzeroB)
    }

    /// N = ‖B·A‖²_F = Σᵢⱼ (BᵀB)ᵢⱼ (AAᵀ)ᵢⱼ from the r×r Gram matrices of the factors as given (binary64).
    ///
    /// Each Gram entry is summed in its own fixed order (over the rows of B, over the columns of A), the
    /// entries of a row side by side in SIMD lanes; (AAᵀ)ᵢⱼ and (AAᵀ)ⱼᵢ are the same sum of the same
    /// products, computed once.
    ///
    /// - Precondition: `a.count` and `b.count` are multiples of `rank > 0`.
    /// - Complexity: O((in + out)·r²) arithmetic, O(r²) memory plus a binary64 copy of A.
    public static func normSquared(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int) -> Double {
        precondition(r > 0 && a.count % r == 0 && b.count % r == 0, "factors of \(a.count) and \(b.count) values for rank \(r)")
        let n = a.count / r
        let gramB = UnsafeMutableBufferPointer<Double>.allocate(capacity: r * r)
        let gramA = UnsafeMutableBufferPointer<Double>.allocate(capacity: r * r)
        let row = UnsafeMutablePointer<Double>.allocate(capacity: r)
        let columns = UnsafeMutablePointer<Double>.allocate(capacity: max(n * r, 1))
        defer {
            gramB.deallocate()
            gramA.deallocate()
            row.deallocate()
            columns.deallocate()
        }
        gramB.initialize(repeating: 0)
        gramA.initialize(repeating: 0)
        // BᵀB: row i of the Gram matrix gets x_i·(the row of B), for each row of B whose x_i is not 0.
        for y in 0..<(b.count / r) {
            for k in 0..<r { row[k] = Double(b[y &* r &+ k]) }
            for i in 0..<r where row[i] != 0 {
                Lanes.add(row[i], times: row, to: gramB.baseAddress! + i &* r, count: r)
            }
        }
        // AAᵀ: (AAᵀ)ᵢⱼ = Σ_c a_ic·a_jc over the columns c in order. A's columns are laid out one after another
        // in binary64, so the j's of one column lie side by side; the columns run in chunks that stay in
        // cache, the partial sums kept in place. Row i computes the lane blocks holding j ≥ i.
        for c in 0..<n {
            for j in 0..<r { columns[c &* r &+ j] = Double(a[j &* n &+ c]) }
        }
        let chunk = 256
        var c0 = 0
        while c0 < n {
            let c1 = min(n, c0 + chunk)
            for i in 0..<r {
                let g = gramA.baseAddress! + i &* r
                var j = i & ~7
                while j &+ 8 <= r {
                    var sum = UnsafeRawPointer(g + j).loadUnaligned(as: SIMD8<Double>.self)
                    var column = columns + c0 &* r
                    for _ in c0..<c1 {
                        sum += SIMD8(repeating: column[i]) * UnsafeRawPointer(column + j).loadUnaligned(as: SIMD8<Double>.self)
                        column += r
                    }
                    UnsafeMutableRawPointer(g + j).storeBytes(of: sum, as: SIMD8<Double>.self)
                    j &+= 8
                }
                while j < r {
                    var sum = g[j]
                    for c in c0..<c1 { sum += columns[c &* r &+ i] * columns[c &* r &+ j] }
                    g[j] = sum
                    j &+= 1
                }
            }
            c0 = c1
        }
        var total = 0.0
        for i in 0..<r {
            for j in 0..<r { total += gramB[i &* r &+ j] * (j >= i ? gramA[i &* r &+ j] : gramA[j &* r &+ i]) }
        }
        return total
    }
}

/// Sums s·sᵀ (integer) and x·sᵀ (binary64) over vectors x of length r, where s is the sign vector of
/// x's kept non-zero entries: the Gram matrices of ``ModuleProduct``.
enum RowAccumulator {
    /// - Parameters:
    ///   - gram: r×r, Σ s·sᵀ.
    ///   - crossTransposed: r×r, (x·sᵀ)ᵀ: row j holds Σ s_j·x, so that one kept entry updates a contiguous row.
    ///   - load: writes vector number `row` into its r-element buffer.
    static func run(rows: Int, rank r: Int, threshold: UInt32, gram: UnsafeMutablePointer<Int64>,
                    crossTransposed cross: UnsafeMutablePointer<Double>, kept: inout Int, nonzero: inout Int,
                    load: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let x = UnsafeMutablePointer<Float>.allocate(capacity: r)
        let wide = UnsafeMutablePointer<Double>.allocate(capacity: r)
        let index = UnsafeMutablePointer<Int>.allocate(capacity: r)
        let sign = UnsafeMutablePointer<Int64>.allocate(capacity: r)
        defer {
            x.deallocate()
            wide.deallocate()
            index.deallocate()
            sign.deallocate()
        }
        for row in 0..<rows {
            load(row, x)
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
            guard n > 0 else { continue }
            for k in 0..<r { wide[k] = Double(x[k]) }
            for p in 0..<n {
                let j = index[p]
                let sj = sign[p]
                let g = gram + j &* r
                for q in 0..<n { g[index[q]] &+= sj * sign[q] }
                // x_k·s_j, as the scalar loop multiplies (exact: s is ±1), then one add per entry.
                Lanes.add(Double(sj), times: wide, to: cross + j &* r, count: r)
            }
        }
    }
}
