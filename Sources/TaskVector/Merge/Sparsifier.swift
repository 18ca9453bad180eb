/// How one expert's residual is thinned before the experts are combined: step 1 of every
/// ``MergeMethod``.
public enum Sparsifier: Sendable, Hashable {
    /// Every value as it is.
    case keepAll
    /// The entries a ``MagnitudeThreshold`` keeps; the others become `τ × 0`.
    case magnitude(MagnitudeThreshold)
    /// DARE: `(τ × m) / density` for the mask bit `m`, as PEFT's `random_pruning(rescale=True)`.
    ///
    /// - Precondition: `density` is not ``Density/full``; at density 1 PEFT prunes nothing (use ``keepAll``).
    case drop(DropMask, density: Density)
}

/// How the sparsified experts are weighted and combined: step 3 of every ``MergeMethod``.
public enum Combination: Sendable, Hashable {
    /// Σ wᵢ·τ̃ᵢ.
    case sum
    /// TIES: elect a sign from the unweighted τ̃ᵢ, then Σ wᵢ·τ̃ᵢ over the agreeing experts divided
    /// by how many agree (at least 1). A zero never agrees with either sign.
    case disjointMean(SignElection)
}

extension MergeMethod {
    /// The combination step of this method.
    public var combination: Combination {
        if let election { .disjointMean(election) } else { .sum }
    }

    /// The sparsifier of each expert for one tensor.
    ///
    /// - Parameters:
    ///   - experts: the experts' values for this tensor (read only to find per-tensor thresholds).
    ///   - thresholds: for the magnitude methods, one precomputed threshold per expert (global
    ///     scope); `nil` finds PEFT's per-tensor top-k.
    ///   - masks: for DARE, one explicit mask per expert; `nil` draws them from `seed` and `tensor`
    ///     (see ``DropMask/random(count:density:seed:tensor:expert:)``).
    public func sparsifiers(for experts: [UnsafeBufferPointer<Float>], thresholds: [MagnitudeThreshold]? = nil,
                            masks: [DropMask]? = nil, seed: UInt64 = 0, tensor: String = "") -> [Sparsifier] {
        if let thresholds { precondition(thresholds.count == experts.count, "one threshold per expert") }
        if let masks { precondition(masks.count == experts.count, "one mask per expert") }
        // PEFT's `prune` returns the tensor untouched at density 1, for both trims.
        if density == .full { return Array(repeating: .keepAll, count: experts.count) }
        switch self {
        case .taskArithmetic:
            return Array(repeating: .keepAll, count: experts.count)
        case .magnitudePrune, .ties:
            return experts.indices.map { e in
                .magnitude(thresholds?[e] ?? MagnitudeThreshold.peft(experts[e], density: density))
            }
        case .dareLinear, .dareTies:
            return experts.indices.map { e in
                let mask = masks?[e] ?? DropMask.random(count: experts[e].count, density: density, seed: seed,
                                                        tensor: tensor, expert: e)
                return .drop(mask, density: density)
            }
        }
    }
}
