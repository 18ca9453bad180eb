extension HouseholderQR {
    /// Applies the reflection I − 2vvᵀ/(vᵀv) to the columns `columns` of a row-major matrix, restricted to
    /// the rows `firstRow ..< firstRow + v.count`.
    ///
    /// Each column c gets exactly the scalar operations of the column-at-a-time loop
    ///
    ///     dot = 0; for i in v.indices { dot += v[i] * x[firstRow + i, c] }
    ///     f = 2 * dot / vtv; for i in v.indices { x[firstRow + i, c] -= f * v[i] }
    ///
    /// in the same order, so the results are bit-identical to it; the columns are independent, and a
    /// row-major layout puts them side by side, so a block of columns runs in SIMD lanes (a lane per
    /// column, each summing over the rows in order). Products and sums are separate operations, never a
    /// fused multiply-add (Swift does not contract them).
    ///
    /// - Parameters:
    ///   - x: the matrix, `stride` elements per row.
    ///   - skippingZeroDots: leave a column whose dot is 0 (either sign) untouched, as `guard dot != 0`
    ///     would; subtracting f·vᵢ = ±0 instead could turn a −0 into +0.
    ///   - scratch: at least 2 · `columns.count` elements (the dots, then the factors f).
    /// - Complexity: O(`v.count` · `columns.count`).
    @inline(__always)
    static func reflect(_ x: UnsafeMutablePointer<Double>, stride: Int, firstRow: Int, columns: Range<Int>,
                        v: UnsafeBufferPointer<Double>, vtv: Double, skippingZeroDots: Bool,
                        scratch: UnsafeMutablePointer<Double>) {
        let width = columns.count
        guard width > 0 else { return }
        let origin = x + (firstRow &* stride &+ columns.lowerBound)
        let blocked = width & ~7
        let dots = scratch
        let factors = scratch + width
        // Dots, row by row: each row of the block is read once, whole (the sums of all its columns stay in
        // cache), and each column's sum takes its rows in order.
        dots.update(repeating: 0, count: width)
        var row = origin
        for i in 0..<v.count {
            Lanes.add(v[i], times: row, to: dots, count: width)
            row += stride
        }
        // Factors f = 2·dot/vᵀv, and whether any column is skipped. (A tiny dot can give f = 0 and is
        // still applied, so the mask is the dot's, not f's.)
        var skips = false
        for c in 0..<width {
            if skippingZeroDots && dots[c] == 0 { skips = true }
            factors[c] = 2 * dots[c] / vtv
        }
        row = origin
        for i in 0..<v.count {
            let vi = v[i]
            let lane = SIMD8<Double>(repeating: vi)
            var c = 0
            if skips {
                while c < blocked {
                    let dot = UnsafeRawPointer(dots + c).loadUnaligned(as: SIMD8<Double>.self)
                    let f = UnsafeRawPointer(factors + c).loadUnaligned(as: SIMD8<Double>.self)
                    let old = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD8<Double>.self)
                    let new = old.replacing(with: old - f * lane, where: dot .!= 0)
                    UnsafeMutableRawPointer(row + c).storeBytes(of: new, as: SIMD8<Double>.self)
                    c &+= 8
                }
                while c < width {
                    if dots[c] != 0 { row[c] -= factors[c] * vi }
                    c &+= 1
                }
            } else {
                while c < blocked {
                    let f = UnsafeRawPointer(factors + c).loadUnaligned(as: SIMD8<Double>.self)
                    let old = UnsafeRawPointer(row + c).loadUnaligned(as: SIMD8<Double>.self)
                    UnsafeMutableRawPointer(row + c).storeBytes(of: old - f * lane, as: SIMD8<Double>.self)
                    c &+= 8
                }
                while c < width {
                    row[c] -= factors[c] * vi
                    c &+= 1
                }
            }
            row += stride
        }
    }
}
