/// The thin singular value decomposition `A = U Σ Vᵀ` of an m×n matrix, in `Double`.
///
/// With `p = min(m, n)`: U is m×p and V is n×p, both with orthonormal columns, and the singular
/// values σ₁ ≥ σ₂ ≥ … ≥ σₚ ≥ 0 are sorted descending (equal values keep their order of discovery).
///
/// The algorithm is one-sided (Hestenes) Jacobi after a Householder QR: for m ≥ n, `A = Q R`, then
/// plane rotations orthogonalize the columns of R until every pair satisfies
/// `|xₚ·x_q| ≤ √n·ε·‖xₚ‖‖x_q‖`; the column norms are the singular values. Jacobi computes small
/// singular values to high relative accuracy, needs no shifts or deflation, and handles zero,
/// rank-deficient and repeated-singular-value matrices without special cases. The matrix is first
/// scaled by a power of two (exact) so that no square overflows or underflows, whatever its range.
/// For m < n it decomposes Aᵀ and swaps U and V.
///
/// Columns of U for zero singular values are completed to an orthonormal set (they multiply zero).
///
/// - Complexity: O(m n²) for the QR plus O(n³) per sweep, typically 6–10 sweeps. That is fast for
///   the small cores of LoRA merges (see ``LoRAMerge``) and slow for a dense 4096×4096 matrix.
public struct SVD: Sendable {
    /// m×p left singular vectors.
    public let u: Matrix
    /// σ₁ ≥ … ≥ σₚ ≥ 0.
    public let singularValues: [Double]
    /// p×n right singular vectors, transposed.
    public let vt: Matrix
    /// Jacobi sweeps used (0 when there was nothing to rotate).
    public let sweeps: Int

    /// Decomposes `a`.
    ///
    /// - Precondition: every element is finite.
    public init(_ a: Matrix) {
        precondition(a.elements.allSatisfy(\.isFinite), "SVD of a matrix with NaN or ±Inf")
        if a.rows < a.cols {
            let t = SVD(a.transposed)
            u = t.vt.transposed
            singularValues = t.singularValues
            vt = t.u.transposed
            sweeps = t.sweeps
            return
        }
        let m = a.rows
        let n = a.cols
        let largest = a.elements.reduce(0.0) { max($0, $1.magnitude) }
        guard n > 0, largest > 0 else {
            u = Matrix.identity(m).columns(0..<n)
            singularValues = [Double](repeating: 0, count: n)
            vt = Matrix.identity(n)
            sweeps = 0
            return
        }
        // Scale by 2^-e with |a|max ∈ [0.5, 1): exact, and keeps every square in range.
        let exponent = largest.exponent + 1
        var scaled = a
        for i in scaled.elements.indices { scaled.elements[i] = Double(sign: .plus, exponent: -exponent, significand: scaled.elements[i]) }
        let qr = HouseholderQR(scaled)
        // x[j] is column j of R, v[j] column j of V; both contiguous.
        var x = qr.r.transposed.elements
        var v = Matrix.identity(n).elements
        let tolerance = Double(n).squareRoot() * Double.ulpOfOne
        var sweep = 0
        x.withUnsafeMutableBufferPointer { x in
            v.withUnsafeMutableBufferPointer { v in
                while sweep < 100 {
                    var rotated = false
                    for p in 0..<(n - 1) {
                        for q in (p + 1)..<n {
                            let xp = p &* n
                            let xq = q &* n
                            var alpha = 0.0
                            var beta = 0.0
                            var gamma = 0.0
                            for i in 0..<n {
                                let a = x[xp &+ i]
                                let b = x[xq &+ i]
                                alpha += a * a
                                beta += b * b
                                gamma += a * b
                            }
                            guard gamma != 0,
                                  gamma.magnitude > tolerance * alpha.squareRoot() * beta.squareRoot()
                            else { continue }
                            rotated = true
                            let zeta = (beta - alpha) / (2 * gamma)
                            let t = zeta.magnitude > 1e150
                                ? 1 / (2 * zeta)
                                : (zeta >= 0 ? 1 : -1) / (zeta.magnitude + (1 + zeta * zeta).squareRoot())
                            let c = 1 / (1 + t * t).squareRoot()
                            let s = c * t
                            for i in 0..<n {
                                let a = x[xp &+ i]
                                let b = x[xq &+ i]
                                x[xp &+ i] = c * a - s * b
                                x[xq &+ i] = s * a + c * b
                                let va = v[xp &+ i]
                                let vb = v[xq &+ i]
                                v[xp &+ i] = c * va - s * vb
                                v[xq &+ i] = s * va + c * vb
                            }
                        }
                    }
                    sweep += 1
                    if !rotated { break }
                }
            }
        }
        sweeps = sweep
        var norms = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var sumSquares = 0.0
            for i in 0..<n { sumSquares += x[j * n + i] * x[j * n + i] }
            norms[j] = sumSquares.squareRoot()
        }
        let order = (0..<n).sorted { norms[$0] > norms[$1] || (norms[$0] == norms[$1] && $0 < $1) }
        // Left vectors of R: normalized columns, completed where σ = 0.
        var ur = [[Double]]()
        ur.reserveCapacity(n)
        var missing: [Int] = []
        for (k, j) in order.enumerated() {
            let sigma = norms[j]
            if sigma > 0 {
                let column = (0..<n).map { x[j * n + $0] / sigma }
                if column.allSatisfy(\.isFinite) {
                    ur.append(column)
                    continue
                }
            }
            missing.append(k)
            ur.append([])
        }
        Self.complete(&ur, missing: missing, length: n)
        var uR = Matrix(zeros: n, n)
        var vSorted = Matrix(zeros: n, n)
        for (k, j) in order.enumerated() {
            for i in 0..<n {
                uR[i, k] = ur[k][i]
                vSorted[k, i] = v[j * n + i]
            }
        }
        u = qr.q.multiplied(by: uR)
        singularValues = order.map { Double(sign: .plus, exponent: exponent, significand: norms[$0]) }
        vt = vSorted
    }

    /// Fills the columns `missing` of `columns` with unit vectors orthogonal to all the others, by
    /// Gram–Schmidt (twice) over the standard basis.
    ///
    /// Each column takes the first basis vector (scanning on from the last one taken) whose
    /// projection keeps a norm above 0.5, or else the one whose projection is longest. With r
    /// orthonormal columns the squared norms of the n projections sum to n − r, so the longest is at
    /// least √((n − r)/n) > 0 while a column is missing: the scan always succeeds, even when most
    /// columns are filled and no projection reaches 0.5.
    private static func complete(_ columns: inout [[Double]], missing: [Int], length: Int) {
        var next = 0
        for k in missing {
            var best: (norm: Double, vector: [Double]) = (0, [])
            for step in 0..<length {
                let candidate = (next + step) % length
                var e = [Double](repeating: 0, count: length)
                e[candidate] = 1
                for _ in 0..<2 {
                    for other in columns where !other.isEmpty {
                        var dot = 0.0
                        for i in 0..<length { dot += other[i] * e[i] }
                        for i in 0..<length { e[i] -= dot * other[i] }
                    }
                }
                let norm = e.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > best.norm { best = (norm, e) }
                if norm > 0.5 {
                    next = candidate + 1
                    break
                }
            }
            precondition(best.norm > 0, "cannot complete an orthonormal basis of \(length) vectors")
            columns[k] = best.vector.map { $0 / best.norm }
        }
    }

    /// Number of singular values, `min(m, n)`.
    public var count: Int { singularValues.count }

    /// The share of ‖A‖²_F that a rank-`rank` truncation discards: Σ_{i>rank} σᵢ² / Σ σᵢ², or 0 for
    /// the zero matrix.
    public func discardedEnergy(keeping rank: Int) -> Double {
        let total = singularValues.reduce(0) { $0 + $1 * $1 }
        guard total > 0 else { return 0 }
        let tail = singularValues.dropFirst(max(rank, 0)).reduce(0) { $0 + $1 * $1 }
        return tail / total
    }

    /// `U[:, :rank] · diag(σ[:rank])`, padded with zero columns when `rank > count`.
    public func leftFactor(rank: Int) -> Matrix {
        var b = Matrix(zeros: u.rows, rank)
        for i in 0..<u.rows {
            for j in 0..<min(rank, count) { b[i, j] = u[i, j] * singularValues[j] }
        }
        return b
    }

    /// `Vᵀ[:rank]`, padded with zero rows when `rank > count`.
    public func rightFactor(rank: Int) -> Matrix {
        var a = Matrix(zeros: rank, vt.cols)
        for i in 0..<min(rank, count) {
            for j in 0..<vt.cols { a[i, j] = vt[i, j] }
        }
        return a
    }
}
