/// The column-at-a-time Householder QR that `HouseholderQR` replaced, kept as the plain reference its
/// lane kernel must match bit for bit: the same reflections, each column's dot product summed over the
/// rows in order, on a column-major working copy.
///
/// - Parameters: `a`, m×n row-major.
/// - Returns: Q (m×p) and R (p×n), row-major, p = min(m, n).
public func scalarHouseholderQR(rows m: Int, cols n: Int, _ a: [Double]) -> (q: [Double], r: [Double]) {
    precondition(a.count == m * n)
    let p = min(m, n)
    var w = [Double](repeating: 0, count: m * n)
    for i in 0..<m { for c in 0..<n { w[c * m + i] = a[i * n + c] } }
    var reflectors: [(start: Int, v: [Double], vtv: Double)] = []
    for j in 0..<p {
        let column = j * m
        var largest = 0.0
        for i in j..<m { largest = max(largest, w[column + i].magnitude) }
        guard largest > 0 else { continue }
        var sumSquares = 0.0
        for i in j..<m {
            let x = w[column + i] / largest
            sumSquares += x * x
        }
        let norm = largest * sumSquares.squareRoot()
        let x0 = w[column + j]
        let alpha = x0 >= 0 ? -norm : norm
        var v = Array(w[(column + j)..<(column + m)])
        v[0] = x0 - alpha
        var vtv = 0.0
        for x in v { vtv += x * x }
        guard vtv > 0 else { continue }
        for c in (j + 1)..<max(n, j + 1) {
            let target = c * m + j
            var dot = 0.0
            for i in v.indices { dot += v[i] * w[target + i] }
            let f = 2 * dot / vtv
            for i in v.indices { w[target + i] -= f * v[i] }
        }
        w[column + j] = alpha
        for i in (j + 1)..<m { w[column + i] = 0 }
        reflectors.append((j, v, vtv))
    }
    var r = [Double](repeating: 0, count: p * n)
    for c in 0..<n {
        for i in 0..<min(c + 1, p) { r[i * n + c] = w[c * m + i] }
    }
    var e = [Double](repeating: 0, count: p * m)
    for c in 0..<p { e[c * m + c] = 1 }
    for (start, v, vtv) in reflectors.reversed() {
        for c in 0..<p {
            let target = c * m + start
            var dot = 0.0
            for i in v.indices { dot += v[i] * e[target + i] }
            guard dot != 0 else { continue }
            let f = 2 * dot / vtv
            for i in v.indices { e[target + i] -= f * v[i] }
        }
    }
    var q = [Double](repeating: 0, count: m * p)
    for c in 0..<p { for i in 0..<m { q[i * p + c] = e[c * m + i] } }
    return (q, r)
}
