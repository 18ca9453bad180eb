/// The thin QR factorization of an m×n matrix by Householder reflections: `A = Q R` with
/// `p = min(m, n)`, Q (m×p) with orthonormal columns and R (p×n) upper trapezoidal.
///
/// Rank-deficient input is fine: a zero column gets no reflection, R has zeros on its diagonal and
/// Q stays orthonormal. Each reflection's norm is computed scaled by the column's largest entry, so
/// no intermediate square overflows or underflows.
///
/// Every element is computed by the same sequence of binary64 operations as the plain column-at-a-time
/// algorithm (each dot product summed over the rows in order); the work runs across SIMD lanes, one
/// column per lane, in a row-major copy (``reflect(_:stride:firstRow:columns:v:vtv:skippingZeroDots:scratch:)``).
package struct HouseholderQR: Sendable {
    package let q: Matrix
    package let r: Matrix

    package init(_ a: Matrix) {
        let m = a.rows
        let n = a.cols
        let p = min(m, n)
        var w = a.elements
        var reflectors: [(start: Int, v: [Double], vtv: Double)] = []
        reflectors.reserveCapacity(p)
        var scratch = [Double](repeating: 0, count: 2 * max(n, 1))
        scratch.withUnsafeMutableBufferPointer { scratch in
            w.withUnsafeMutableBufferPointer { w in
                for j in 0..<p {
                    var largest = 0.0
                    for i in j..<m { largest = max(largest, w[i &* n &+ j].magnitude) }
                    guard largest > 0 else { continue }
                    var sumSquares = 0.0
                    for i in j..<m {
                        let y = w[i &* n &+ j] / largest
                        sumSquares += y * y
                    }
                    let norm = largest * sumSquares.squareRoot()
                    let x0 = w[j &* n &+ j]
                    let alpha = x0 >= 0 ? -norm : norm
                    var v = [Double](unsafeUninitializedCapacity: m - j) { v, count in
                        for i in j..<m { v[i &- j] = w[i &* n &+ j] }
                        count = m - j
                    }
                    v[0] = x0 - alpha
                    var vtv = 0.0
                    for y in v { vtv += y * y }
                    guard vtv > 0 else { continue }
                    v.withUnsafeBufferPointer { v in
                        Self.reflect(w.baseAddress!, stride: n, firstRow: j, columns: (j + 1)..<max(n, j + 1), v: v, vtv: vtv,
                                     skippingZeroDots: false, scratch: scratch.baseAddress!)
                    }
                    w[j &* n &+ j] = alpha
                    for i in (j + 1)..<m { w[i &* n &+ j] = 0 }
                    reflectors.append((j, v, vtv))
                }
            }
        }
        var r = Matrix(zeros: p, n)
        w.withUnsafeBufferPointer { w in
            r.elements.withUnsafeMutableBufferPointer { r in
                for i in 0..<p {
                    for c in i..<n { r[i &* n &+ c] = w[i &* n &+ c] }
                }
            }
        }
        // Q = H₀ H₁ … applied to the first p columns of the identity, last reflection first. A column
        // c < start is 0 in the rows a reflection starting at `start` touches (only later reflections, which
        // start further down, have run), so its dot is 0 and the reflection skips it: its range starts at
        // `start`.
        var e = [Double](repeating: 0, count: m * p)
        for c in 0..<p { e[c * p + c] = 1 }
        scratch.withUnsafeMutableBufferPointer { scratch in
            e.withUnsafeMutableBufferPointer { e in
                for (start, v, vtv) in reflectors.reversed() {
                    v.withUnsafeBufferPointer { v in
                        Self.reflect(e.baseAddress!, stride: p, firstRow: start, columns: start..<p, v: v, vtv: vtv,
                                     skippingZeroDots: true, scratch: scratch.baseAddress!)
                    }
                }
            }
        }
        q = Matrix(rows: m, cols: p, elements: e)
        self.r = r
    }
}
