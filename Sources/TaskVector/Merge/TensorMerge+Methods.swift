/// One function per PEFT merge method, on arrays: the spelling tests and small callers use.
///
/// Each is ``TensorMerge/merge(_:weights:method:lambda:thresholds:masks:seed:tensor:)`` with the
/// method spelled out, and matches the `peft.utils.merge_utils` function of the same name.
extension TensorMerge {
    /// Σ wᵢ·τᵢ (`task_arithmetic`).
    public static func taskArithmetic(_ experts: [[Float]], weights: [Float], lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .taskArithmetic, lambda: lambda)
    }

    /// Keeps each expert's ``Density/keepCount(of:)`` largest magnitudes, then Σ wᵢ·τ̃ᵢ (`magnitude_prune`).
    public static func magnitudePrune(_ experts: [[Float]], weights: [Float], density: Density,
                                      lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .magnitudePrune(density: density), lambda: lambda)
    }

    /// Magnitude trim, sign election on the unweighted trimmed values, disjoint mean of the weighted
    /// agreeing values (`ties`).
    public static func ties(_ experts: [[Float]], weights: [Float], density: Density,
                            election: SignElection = .total, lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .ties(density: density, election: election), lambda: lambda)
    }

    /// DARE with explicit masks, then Σ wᵢ·τ̃ᵢ (`dare_linear` with a given Bernoulli draw).
    public static func dareLinear(_ experts: [[Float]], weights: [Float], density: Density, masks: [DropMask],
                                  lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .dareLinear(density: density), lambda: lambda, masks: masks)
    }

    /// DARE with seeded masks (see ``DropMask/random(count:density:seed:tensor:expert:)``), then Σ wᵢ·τ̃ᵢ.
    public static func dareLinear(_ experts: [[Float]], weights: [Float], density: Density, seed: UInt64,
                                  tensor: String = "", lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .dareLinear(density: density), lambda: lambda, seed: seed, tensor: tensor)
    }

    /// DARE with explicit masks, then TIES's election and disjoint mean (`dare_ties`).
    public static func dareTies(_ experts: [[Float]], weights: [Float], density: Density, masks: [DropMask],
                                election: SignElection = .total, lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .dareTies(density: density, election: election), lambda: lambda,
              masks: masks)
    }

    /// DARE with seeded masks, then TIES's election and disjoint mean.
    public static func dareTies(_ experts: [[Float]], weights: [Float], density: Density, seed: UInt64,
                                tensor: String = "", election: SignElection = .total, lambda: Float = 1) -> [Float] {
        merge(experts, weights: weights, method: .dareTies(density: density, election: election), lambda: lambda,
              seed: seed, tensor: tensor)
    }
}
