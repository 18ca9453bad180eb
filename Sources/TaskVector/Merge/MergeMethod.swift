/// How a per-tensor merge sparsifies each expert and combines the results, after PEFT's
/// `peft.utils.merge_utils`.
///
/// Every method is PEFT's three steps, in PEFT's order:
/// 1. *Sparsify* each expert's residual τᵢ on its own: keep all (``taskArithmetic``), keep the
///    ``Density/keepCount(of:)`` largest magnitudes (``magnitudePrune``, ``ties``), or drop entries at
///    random and rescale the survivors by 1/density (``dareLinear``, ``dareTies``).
/// 2. For the TIES methods, *elect* a sign per parameter from the **unweighted** sparsified values
///    (see ``SignElection``).
/// 3. *Weight and combine*: Σ wᵢ·τ̃ᵢ, or for TIES the disjoint mean Σ wᵢ·τ̃ᵢ over the experts whose
///    sign agrees with the elected one, divided by how many agree (at least 1).
///
/// ``Density/full`` keeps every value untouched (PEFT's `prune` returns the tensor as it is at
/// density 1, without DARE's rescaling).
public enum MergeMethod: Sendable, Hashable {
    /// Σ wᵢ·τᵢ (`task_arithmetic`).
    case taskArithmetic
    /// Keep each expert's top `density` fraction by magnitude, then Σ wᵢ·τ̃ᵢ (`magnitude_prune`).
    case magnitudePrune(density: Density)
    /// Magnitude trim, sign election, disjoint mean (`ties`).
    case ties(density: Density, election: SignElection)
    /// Random drop with rescale, then Σ wᵢ·τ̃ᵢ (`dare_linear`).
    case dareLinear(density: Density)
    /// Random drop with rescale, sign election, disjoint mean (`dare_ties`).
    case dareTies(density: Density, election: SignElection)

    /// The share of values each expert keeps; ``Density/full`` for ``taskArithmetic``.
    public var density: Density {
        switch self {
        case .taskArithmetic: .full
        case .magnitudePrune(let d), .ties(let d, _), .dareLinear(let d), .dareTies(let d, _): d
        }
    }

    /// The sign election for the TIES methods; `nil` for the linear ones.
    public var election: SignElection? {
        switch self {
        case .ties(_, let e), .dareTies(_, let e): e
        case .taskArithmetic, .magnitudePrune, .dareLinear: nil
        }
    }

    /// Whether the method trims by magnitude (and so accepts a precomputed ``MagnitudeThreshold``).
    public var trimsByMagnitude: Bool {
        switch self {
        case .magnitudePrune, .ties: true
        case .taskArithmetic, .dareLinear, .dareTies: false
        }
    }

    /// Whether the method drops entries at random (and so needs a ``DropMask`` per expert).
    public var dropsAtRandom: Bool {
        switch self {
        case .dareLinear, .dareTies: true
        case .taskArithmetic, .magnitudePrune, .ties: false
        }
    }
}

/// How TIES elects the sign of each parameter (PEFT's `majority_sign_method`).
///
/// The election looks at the sparsified experts **before** the weights are applied, exactly as
/// PEFT's `ties` calls `calculate_majority_sign_mask` on the trimmed, unweighted tensors. A sum of
/// zero (or an empty column) elects `+`; a sum that is NaN elects `−`, since PEFT tests `sum >= 0`.
public enum SignElection: String, Sendable, Hashable, CaseIterable {
    /// The sign of Σᵢ τ̃ᵢ (`"total"`).
    case total
    /// The sign of Σᵢ sign(τ̃ᵢ): the more frequent sign, ties to `+` (`"frequency"`).
    case frequency
}
