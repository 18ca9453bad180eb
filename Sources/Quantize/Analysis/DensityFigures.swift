/// What compression at one density does to one tensor, one selection group, or all residuals.
///
/// The candidate scales are ternary reconstructions on the kept support with three choices of s,
/// each taken from the selection group (all residuals for global scope, the tensor for tensor scope):
///
/// - ``normPreserving``: s = ‖τ‖₂/√n, n = kept non-zero values, so ‖τ̂‖ = ‖τ‖ (what `--alpha auto`
///   uses for the compeft method);
/// - ``l2Optimal``: s = mean |τ| over the kept non-zero values, the s that minimises ‖τ̂ − τ‖ on the
///   support (‖τ̂‖ < ‖τ‖ whenever values are dropped: it under-scales, most at low density);
/// - ``alphaSigma``: s = α·σ with the requested α (1 for `auto`), σ the unbiased standard deviation.
///
/// The candidates are computed in double precision; ``chosen`` is what the container decodes to,
/// with its binary32 scale.
public struct DensityFigures: Sendable, Equatable {
    /// The tensor's name; `nil` for a group or the whole input.
    public var name: String?
    /// How the container stores the tensor; `nil` for a group or the whole input.
    public var storage: TensorPlan.Storage?
    /// Counts and sums of the residual against the group's threshold.
    public var statistics: SupportStatistics
    /// The group's threshold t and σ; `nil` for the whole input under tensor scope.
    public var threshold: Float?
    public var sigma: Double?
    /// The reconstruction the container decodes to: ±scale for a ternary tensor, τ itself for one
    /// stored exactly, the kept values for a pruned one.
    public var chosen: Reconstruction
    /// Candidate scales (see the type's discussion).
    public var normPreserving: Reconstruction
    public var l2Optimal: Reconstruction
    public var alphaSigma: Reconstruction
    /// The α of ``alphaSigma``.
    public var candidateAlpha: Double

    /// Kept non-zero values over all values: the fraction the container stores (0 for no values).
    public var keptFraction: Double {
        statistics.count > 0 ? Double(statistics.keptNonzero) / Double(statistics.count) : 0
    }

    /// Σ kept τ² / Σ τ²: the share of the squared norm the top-k holds; `nil` when τ = 0.
    public var energyShare: Double? {
        statistics.sumOfSquares > 0 ? statistics.keptSumOfSquares / statistics.sumOfSquares : nil
    }

    /// ‖τ‖.
    public var norm: Double { statistics.sumOfSquares.squareRoot() }
}
