import Foundation
public import TaskVector

/// Rewrites the factors of one LoRA module in another gauge: B·A = (B·M⁻¹)(M·A) for an invertible
/// r×r M, so the product — the only thing the model uses — is unchanged, while the entries of the two
/// factors become comparable and can share one magnitude threshold.
///
/// All arithmetic is binary64 (the factors widen exactly from binary32); callers round the results to
/// binary32 once, at the end.
public enum LoRAGaugeTransform {
    /// A module's factors in a gauge, with the singular values of its product.
    public struct Factors: Sendable, Equatable {
        /// r × in, row-major.
        public var a: Matrix
        /// out × r, row-major.
        public var b: Matrix
        /// σ₁ ≥ … ≥ σᵣ ≥ 0 of B·A (zero-padded to r entries).
        public var singularValues: [Double]

        /// ‖B·A‖²_F = Σ σᵢ².
        public var productNormSquared: Double { singularValues.reduce(0) { $0 + $1 * $1 } }
    }

    /// The SVD gauge: B^S = U·diag(√σ), A^S = diag(√σ)·Vᵀ, where B·A = U·diag(σ)·Vᵀ.
    ///
    /// Computed from the factors alone, never forming B·A: thin Householder QR B = Q_B·R_B and
    /// Aᵀ = Q_A·R_A, the SVD of the small core R_B·R_Aᵀ = U_c·diag(σ)·V_cᵀ, then U = Q_B·U_c,
    /// V = Q_A·V_c. When r exceeds min(in, out), only p = min(r, in, out) components exist; the
    /// remaining r − p columns of B^S and rows of A^S are 0 (their σ is 0).
    ///
    /// Each component's sign is fixed so that the result does not depend on the SVD's own choice: let
    /// j be the row of the largest |Vⱼᵢ| (the smallest j among equal magnitudes); when Vⱼᵢ < 0, column i
    /// of U and of V is negated. A component with σ = 0 is exactly 0 in both factors, so a zero module
    /// stays zero and rank deficiency needs no special case. B^S·A^S = B·A and ‖B^S‖_F = ‖A^S‖_F.
    ///
    /// - Parameters:
    ///   - a: `lora_A`, r × in.
    ///   - b: `lora_B`, out × r.
    /// - Precondition: `b.cols == a.rows`, every element finite.
    /// - Complexity: O((in + out)·r²) for the QRs and the products, O(r³) per Jacobi sweep of the core.
    public static func svd(a: Matrix, b: Matrix) -> Factors {
        let r = a.rows
        precondition(b.cols == r, "lora_B has \(b.cols) columns for lora_A of \(r) rows")
        let qrB = HouseholderQR(b)
        let qrA = HouseholderQR(a.transposed)
        let core = qrB.r.multiplied(by: qrA.r.transposed)
        let svd = SVD(core)
        let p = svd.count
        let u = qrB.q.multiplied(by: svd.u)
        let v = qrA.q.multiplied(by: svd.vt.transposed)
        var bS = Matrix(zeros: b.rows, r)
        var aS = Matrix(zeros: r, a.cols)
        var sigma = [Double](repeating: 0, count: r)
        u.elements.withUnsafeBufferPointer { u in
            v.elements.withUnsafeBufferPointer { v in
                bS.elements.withUnsafeMutableBufferPointer { bS in
                    aS.elements.withUnsafeMutableBufferPointer { aS in
                        let (outRows, inCols) = (b.rows, a.cols)
                        for i in 0..<p {
                            var j = 0
                            var largest = -1.0
                            for row in 0..<inCols where v[row &* p &+ i].magnitude > largest {
                                largest = v[row &* p &+ i].magnitude
                                j = row
                            }
                            // Negating is exact, so −(x)·h is the bits of (−x)·h.
                            let flip = inCols > 0 && v[j &* p &+ i] < 0
                            sigma[i] = svd.singularValues[i]
                            let h = sigma[i].squareRoot()
                            for row in 0..<outRows {
                                let x = u[row &* p &+ i]
                                bS[row &* r &+ i] = (flip ? -x : x) * h
                            }
                            for col in 0..<inCols {
                                let x = v[col &* p &+ i]
                                aS[i &* inCols &+ col] = h * (flip ? -x : x)
                            }
                        }
                    }
                }
            }
        }
        return Factors(a: aS, b: bS, singularValues: sigma)
    }

    /// The orthonormal DCT-II basis of size r: C[n, k] = √(2/r)·cos(π(2n + 1)k / (2r)), with column
    /// k = 0 multiplied by 1/√2. Its columns are the basis vectors (CᵀC = I).
    ///
    /// - Precondition: `r > 0`.
    public static func dctBasis(_ r: Int) -> Matrix {
        precondition(r > 0, "DCT of size \(r)")
        var c = Matrix(zeros: r, r)
        let norm = (2 / Double(r)).squareRoot()
        for n in 0..<r {
            for k in 0..<r {
                var x = norm * cos(Double.pi * Double(2 * n + 1) * Double(k) / Double(2 * r))
                if k == 0 { x /= 2.0.squareRoot() }
                c[n, k] = x
            }
        }
        return c
    }

    /// The SVD gauge rotated by the DCT-II: B^D = B^S·C, A^D = Cᵀ·A^S (the same product).
    ///
    /// The rotation spreads every singular component over all r rows of A and columns of B, so the
    /// pooled entries are far less heavy-tailed than in the SVD gauge, where each component's entries
    /// scale with its own √σᵢ.
    ///
    /// - Parameter svd: the module in the SVD gauge (``svd(a:b:)``).
    public static func dct(_ svd: Factors) -> Factors {
        let c = dctBasis(svd.a.rows)
        return Factors(a: c.transposed.multiplied(by: svd.a), b: svd.b.multiplied(by: c), singularValues: svd.singularValues)
    }
}
