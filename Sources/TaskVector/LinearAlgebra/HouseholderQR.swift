/// The thin QR factorization of an m×n matrix by Householder reflections: `A = Q R` with
/// `p = min(m, n)`, Q (m×p) with orthonormal columns and R (p×n) upper trapezoidal.
///
/// Rank-deficient input is fine: a zero column gets no reflection, R has zeros on its diagonal and
/// Q stays orthonormal. Each reflection's norm is computed scaled by the column's largest entry, so
/// no intermediate square overflows or underflows.
package struct HouseholderQR: Sendable {
    package let q: Matrix
    package let r: Matrix

    package init(_ a: Matrix) {
        let m = a.rows
        let n = a.cols
        let p = min(m, n)
        // Column-major working copy: column c is w[c*m ..< (c+1)*m].
        var w = a.transposed.elements
        var reflectors: [(start: Int, v: [Double], vtv: Double)] = []
        reflectors.reserveCapacity(p)
        w.withUnsafeMutableBufferPointer { w in
            for j in 0..<p {
                let column = j &* m
                var largest = 0.0
                for i in j..<m { largest = max(largest, w[column &+ i].magnitude) }
                guard largest > 0 else { continue }
                var sumSquares = 0.0
                for i in j..<m {
                    let x = w[column &+ i] / largest
                    sumSquares += x * x
                }
                let norm = largest * sumSquares.squareRoot()
                let x0 = w[column &+ j]
                let alpha = x0 >= 0 ? -norm : norm
                var v = Array(w[(column + j)..<(column + m)])
                v[0] = x0 - alpha
                var vtv = 0.0
                for x in v { vtv += x * x }
                guard vtv > 0 else { continue }
                for c in (j + 1)..<max(n, j + 1) {
                    let target = c &* m &+ j
                    var dot = 0.0
                    for i in v.indices { dot += v[i] * w[target &+ i] }
                    let f = 2 * dot / vtv
                    for i in v.indices { w[target &+ i] -= f * v[i] }
                }
                w[column &+ j] = alpha
                for i in (j + 1)..<m { w[column &+ i] = 0 }
                reflectors.append((j, v, vtv))
            }
        }
        var r = Matrix(zeros: p, n)
        for c in 0..<n {
            for i in 0..<min(c + 1, p) { r[i, c] = w[c * m + i] }
        }
        // Q = H₀ H₁ … applied to the first p columns of the identity, last reflection first.
        var e = [Double](repeating: 0, count: p * m)
        for c in 0..<p { e[c * m + c] = 1 }
        e.withUnsafeMutableBufferPointer { e in
            for (start, v, vtv) in reflectors.reversed() {
                for c in 0..<p {
                    let target = c &* m &+ start
                    var dot = 0.0
                    for i in v.indices { dot += v[i] * e[target &+ i] }
                    guard dot != 0 else { continue }
                    let f = 2 * dot / vtv
                    for i in v.indices { e[target &+ i] -= f * v[i] }
                }
            }
        }
        q = Matrix(rows: p, cols: m, elements: e).transposed
        self.r = r
    }
}
