/// Merges of LoRA adapters layer by layer, without leaving the low-rank form where possible.
///
/// For experts i with factors Aᵢ (rᵢ×n), Bᵢ (m×rᵢ), scales sᵢ and weights wᵢ, the linear merge is
/// `ΔW = Σ wᵢ sᵢ Bᵢ Aᵢ`. Three ways to write it as one LoRA:
/// - ``exact(_:weights:module:)``: concatenation, rank Σrᵢ, no error (PEFT's `"cat"`).
/// - ``truncated(_:weights:rank:module:)``: the best rank-R approximation (truncated SVD), computed
///   from the factors through two thin QRs and the SVD of a Σr×Σr core, never forming the m×n ΔW.
///   ``truncated(_:rank:)`` does the same for a dense ΔW (after a dense TIES or DARE merge).
/// - ``factors(_:weights:method:seed:module:)``: PEFT's per-factor combination (`"linear"`,
///   `"ties"`, …), which merges the A's and the B's separately and is only an approximation of ΔW.
///
/// Every result carries ``LoRAScaling/unit(rank:)`` (r = lora_alpha, no rsLoRA): the scales are in
/// the factors.
public enum LoRAMerge {
    /// A rank-R approximation and what it cost.
    public struct Truncation: Sendable {
        /// The factors, `A = Vᵀ[:R]`, `B = U[:, :R]·Σ[:R]` (PEFT's svd convention), unit scaling.
        public var factors: LoRAFactors
        /// Every singular value of the merged ΔW, descending (at most min(m, n, Σr) of them).
        public var singularValues: [Double]
        /// Σ_{i>R} σᵢ² / Σ σᵢ²: the share of ‖ΔW‖²_F that the truncation dropped, which equals
        /// ‖ΔW − BA‖²_F / ‖ΔW‖²_F (before the factors are rounded to `Float`).
        public var discardedEnergy: Double
    }

    /// `Σ wᵢ sᵢ Bᵢ Aᵢ` exactly, as a LoRA of rank Σrᵢ: PEFT's `add_weighted_adapter(…, "cat")`.
    ///
    /// `A = vstack(wᵢ·sᵢ·Aᵢ)` and `B = hstack(Bᵢ)`, with `r = lora_alpha = Σrᵢ` and no rsLoRA, so the
    /// merged layer's own scale is 1. Like PEFT, the weight and scale are folded into A, in `Float`,
    /// as `(Aᵢ × Float(wᵢ)) × Float(sᵢ)`; the result then matches PEFT's tensors bit for bit.
    ///
    /// - Throws: ``TaskVectorError`` (`.mismatch`) when the adapters' layer shapes differ.
    public static func exact(_ adapters: [LoRAFactors], weights: [Double], module: String = "") throws -> LoRAFactors {
        try validate(adapters, weights: weights, module: module, sameRank: false)
        let m = adapters[0].outFeatures
        let n = adapters[0].inFeatures
        let total = adapters.reduce(0) { $0 + $1.rank }
        var a: [Float] = []
        a.reserveCapacity(total * n)
        for (adapter, weight) in zip(adapters, weights) {
            let w = Float(weight)
            let s = Float(adapter.scaling.scale)
            a.append(contentsOf: adapter.a.map { $0 * w * s })
        }
        var b = [Float](repeating: 0, count: m * total)
        var offset = 0
        for adapter in adapters {
            let r = adapter.rank
            for row in 0..<m {
                for j in 0..<r { b[row * total + offset + j] = adapter.b[row * r + j] }
            }
            offset += r
        }
        return LoRAFactors(a: a, b: b, inFeatures: n, outFeatures: m, scaling: .unit(rank: total))
    }

    /// The best rank-`rank` approximation of `Σ wᵢ sᵢ Bᵢ Aᵢ`, from the factors.
    ///
    /// With `B_c = hstack(wᵢ sᵢ Bᵢ)` (m×K) and `A_c = vstack(Aᵢ)` (K×n), K = Σrᵢ: `B_c = Q_B R_B`,
    /// `A_cᵀ = Q_A R_A`, the core `C = R_B R_Aᵀ` has the SVD `U_c Σ V_cᵀ`, and
    /// `ΔW = (Q_B U_c) Σ (Q_A V_c)ᵀ`. All in `Double`; the factors are rounded to `Float` last.
    /// When `rank` exceeds the number of singular values, the extra rows of A and columns of B are 0.
    ///
    /// - Precondition: `rank > 0`.
    /// - Throws: ``TaskVectorError`` (`.mismatch`) when the adapters' layer shapes differ.
    /// - Complexity: O((m + n)·K² + K³): a 4096×4096 layer with K = 64 takes milliseconds.
    public static func truncated(_ adapters: [LoRAFactors], weights: [Double], rank: Int,
                                 module: String = "") throws -> Truncation {
        precondition(rank > 0, "the output rank must be positive")
        try validate(adapters, weights: weights, module: module, sameRank: false)
        let m = adapters[0].outFeatures
        let n = adapters[0].inFeatures
        let k = adapters.reduce(0) { $0 + $1.rank }
        var bc = Matrix(zeros: m, k)
        var act = Matrix(zeros: n, k)  // A_cᵀ
        var offset = 0
        for (adapter, weight) in zip(adapters, weights) {
            let r = adapter.rank
            let f = weight * adapter.scaling.scale
            for row in 0..<m {
                for j in 0..<r { bc[row, offset + j] = f * Double(adapter.b[row * r + j]) }
            }
            for j in 0..<r {
                for col in 0..<n { act[col, offset + j] = Double(adapter.a[j * n + col]) }
            }
            offset += r
        }
        let qrB = HouseholderQR(bc)
        let qrA = HouseholderQR(act)
        let core = qrB.r.multiplied(by: qrA.r.transposed)
        let svd = SVD(core)
        let u = qrB.q.multiplied(by: svd.u)
        let vt = svd.vt.multiplied(by: qrA.q.transposed)
        return truncation(u: u, singularValues: svd.singularValues, vt: vt, rank: rank,
                          discardedEnergy: svd.discardedEnergy(keeping: rank))
    }

    /// The best rank-`rank` approximation of a dense ΔW (outFeatures × inFeatures).
    ///
    /// - Precondition: `rank > 0`; `delta` is finite.
    /// - Complexity: that of ``SVD``: fine for small layers, slow for large square ones.
    public static func truncated(_ delta: Matrix, rank: Int) -> Truncation {
        precondition(rank > 0, "the output rank must be positive")
        let svd = SVD(delta)
        return truncation(u: svd.u, singularValues: svd.singularValues, vt: svd.vt, rank: rank,
                          discardedEnergy: svd.discardedEnergy(keeping: rank))
    }

    /// PEFT's per-factor combination, `add_weighted_adapter` with `combination_type` `"linear"`,
    /// `"ties"`, `"dare_linear"`, `"dare_ties"` or `"magnitude_prune"`.
    ///
    /// PEFT folds `wᵢ·sᵢ` into both factors as square roots: A is combined with weights
    /// `sign(wᵢsᵢ)·√|wᵢsᵢ|` and B with `√|wᵢsᵢ|` (the sign goes on A only, so it is not squared away),
    /// each rounded to `Float`. Then the method runs on the A's and, separately, on the B's, as
    /// ``TensorMerge`` runs it on any tensor: TIES trims and elects within each factor. The result
    /// has the adapters' rank and unit scaling. For ``MergeMethod/taskArithmetic`` this is PEFT's
    /// `"linear"`, which is not `Σ wᵢ sᵢ Bᵢ Aᵢ` (it has cross terms); use ``exact(_:weights:module:)``
    /// or ``truncated(_:weights:rank:module:)`` for that.
    ///
    /// - Parameters:
    ///   - seed: DARE's seed; A and B draw from the streams of tensors `"<module>.lora_A"` and
    ///     `"<module>.lora_B"`.
    ///   - module: the layer's name, for DARE's streams and error messages.
    /// - Throws: ``TaskVectorError`` (`.mismatch`) when the ranks or shapes differ.
    public static func factors(_ adapters: [LoRAFactors], weights: [Double], method: MergeMethod, seed: UInt64 = 0,
                               module: String = "") throws -> LoRAFactors {
        try validate(adapters, weights: weights, module: module, sameRank: true)
        var weightsA: [Float] = []
        var weightsB: [Float] = []
        for (adapter, weight) in zip(adapters, weights) {
            let ws = weight * adapter.scaling.scale
            let root = ws.magnitude.squareRoot()
            weightsA.append(Float(ws >= 0 ? root : -root))
            weightsB.append(Float(root))
        }
        let a = TensorMerge.merge(adapters.map(\.a), weights: weightsA, method: method, seed: seed,
                                  tensor: "\(module).lora_A")
        let b = TensorMerge.merge(adapters.map(\.b), weights: weightsB, method: method, seed: seed,
                                  tensor: "\(module).lora_B")
        let first = adapters[0]
        return LoRAFactors(a: a, b: b, inFeatures: first.inFeatures, outFeatures: first.outFeatures,
                           scaling: .unit(rank: first.rank))
    }

    static func truncation(u: Matrix, singularValues: [Double], vt: Matrix, rank: Int,
                           discardedEnergy: Double) -> Truncation {
        let m = u.rows
        let n = vt.cols
        let p = singularValues.count
        var a = [Float](repeating: 0, count: rank * n)
        var b = [Float](repeating: 0, count: m * rank)
        for i in 0..<min(rank, p) {
            for j in 0..<n { a[i * n + j] = Float(vt[i, j]) }
            for row in 0..<m { b[row * rank + i] = Float(u[row, i] * singularValues[i]) }
        }
        let factors = LoRAFactors(a: a, b: b, inFeatures: n, outFeatures: m, scaling: .unit(rank: rank))
        return Truncation(factors: factors, singularValues: singularValues, discardedEnergy: discardedEnergy)
    }

    static func validate(_ adapters: [LoRAFactors], weights: [Double], module: String, sameRank: Bool) throws {
        precondition(!adapters.isEmpty, "merging needs at least one adapter")
        precondition(weights.count == adapters.count, "\(weights.count) weights for \(adapters.count) adapters")
        let first = adapters[0]
        for (i, adapter) in adapters.enumerated().dropFirst() {
            guard adapter.inFeatures == first.inFeatures, adapter.outFeatures == first.outFeatures else {
                throw TaskVectorError(.mismatch, tensor: module,
                    "adapter \(i) is \(adapter.outFeatures)×\(adapter.inFeatures), adapter 0 is \(first.outFeatures)×\(first.inFeatures)")
            }
            if sameRank, adapter.rank != first.rank {
                throw TaskVectorError(.mismatch, tensor: module,
                    "adapter \(i) has rank \(adapter.rank), adapter 0 has \(first.rank); combining factors needs one rank (merge exactly or by SVD instead)")
            }
        }
    }
}
