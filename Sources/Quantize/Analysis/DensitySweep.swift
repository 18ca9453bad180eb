public import TaskVector

/// Measures, for several densities, what ComPEFT's compression keeps and how far the ternary
/// reconstruction is from the residual, streaming over the residuals as ``Planner`` does.
///
/// Each density uses exactly the threshold and scale of its ``CompressionPlan`` (the plan `compress`
/// makes), so the figures describe the container that `compress` writes with the same options.
/// One pass over every residual tensor feeds the ``SupportStatistics`` of all densities at once, chunk
/// by chunk; nothing is materialised, so memory is independent of the model's size.
public enum DensitySweep {
    /// The figures of one density.
    public struct Point: Sendable {
        /// The density the plan keeps.
        public var density: Density
        /// The plan the figures follow.
        public var plan: CompressionPlan
        /// All residual tensors together.
        public var total: DensityFigures
        /// One entry per residual tensor, in input order.
        public var tensors: [DensityFigures]
    }

    /// Plans every density with ``Planner`` and measures them.
    ///
    /// - Parameters:
    ///   - tensors: the input's tensors, sorted by name; non-residual ones are left out of the figures.
    ///   - options: the rule; the density is replaced by each of `densities`.
    ///   - kind: what the tensors are (the defaults of `options`).
    ///   - densities: the densities to plan.
    /// - Throws: ``QuantizeError`` for an invalid option, or naming a tensor that holds NaN or ±Inf.
    /// - Complexity: two passes per density to plan, then one pass over the residuals.
    public static func run(_ tensors: [SourceTensor], options: CompressionOptions, kind: ExpertKind,
                           densities: [Density]) throws -> [Point] {
        let plans = try densities.map { density in
            var o = options
            o.density = density
            return try Planner.plan(tensors, options: o, kind: kind)
        }
        return measure(tensors, plans: plans)
    }

    /// Measures the figures of plans already made for `tensors` (for example by a compression run).
    ///
    /// A plan that codes LoRA factors in another gauge (``CompressionPlan/codedTensors``) is measured on
    /// the factors it stores: its errors are those of the factors in that gauge (their product's error is
    /// in ``CompressionPlan/lora``).
    ///
    /// - Precondition: every plan was made for `tensors`.
    /// - Complexity: one pass over the residuals, O(d · plans.count) arithmetic.
    public static func measure(_ tensors: [SourceTensor], plans: [CompressionPlan]) -> [Point] {
        let residuals = tensors.indices.filter { tensors[$0].role == .residual }
        for plan in plans { precondition(plan.tensors.count == tensors.count, "plan made for other tensors") }
        let groups = plans.map { plan in residuals.map { group(of: tensors[$0].name, in: plan) } }
        // statistics[density][residual]
        var statistics = groups.map { g in g.map { SupportStatistics(shift: shift(for: $0)) } }
        let chunks = ResidualChunks()
        // Plans that code some tensors in another form (LoRA factors in another gauge) measure those.
        let ownValues = plans.indices.filter { plans[$0].codedTensors == nil }
        for (r, i) in residuals.enumerated() {
            let thresholds = groups.map { $0[r].threshold.bitPattern }
            chunks.forEach(tensors[i]) { _, chunk in
                for p in ownValues { statistics[p][r].add(chunk, thresholdBits: thresholds[p]) }
            }
            for p in plans.indices where plans[p].codedTensors != nil {
                chunks.forEach(plans[p].codedTensor(i, of: tensors)) { _, chunk in
                    statistics[p][r].add(chunk, thresholdBits: thresholds[p])
                }
            }
        }
        return plans.indices.map { p in
            point(plans[p], tensors: residuals.map { tensors[$0] }, groups: groups[p], statistics: statistics[p])
        }
    }

    static func group(of name: String, in plan: CompressionPlan) -> CompressionPlan.Group {
        guard let g = plan.global ?? plan.perTensor[name] else { preconditionFailure("no group for tensor '\(name)'") }
        return g
    }

    /// The scale the centred sums are taken about: the plan's, if it is usable.
    static func shift(for group: CompressionPlan.Group) -> Double {
        group.scale.isFinite ? Double(group.scale) : 0
    }

    static func alpha(_ options: CompressionRule) -> Double {
        if case .value(let a) = options.alpha { return a }
        return 1
    }

    /// Candidate scales of one group: norm-preserving, L2-optimal, α·σ.
    static func candidateScales(_ group: CompressionPlan.Group, statistics: SupportStatistics, alpha: Double) -> (Double, Double, Double) {
        let normPreserving = group.keptNonzero > 0 ? group.norm / Double(group.keptNonzero).squareRoot() : 0
        return (normPreserving, statistics.keptMeanMagnitude, alpha * group.sigma)
    }

    static func point(_ plan: CompressionPlan, tensors: [SourceTensor], groups: [CompressionPlan.Group],
                      statistics: [SupportStatistics]) -> Point {
        let alpha = alpha(plan.rule)
        let planByName = Dictionary(plan.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // Group sums: one group for global scope, one per tensor otherwise.
        var groupStatistics: [SupportStatistics]
        switch plan.rule.scope {
        case .global:
            var all = SupportStatistics(shift: plan.global.map(shift(for:)) ?? 0)
            for s in statistics { all.merge(s) }
            groupStatistics = Array(repeating: all, count: statistics.count)
        case .tensor:
            groupStatistics = statistics
        }
        var figures: [DensityFigures] = []
        for (r, t) in tensors.enumerated() {
            let g = groups[r]
            let s = statistics[r]
            let tp = planByName[t.name]!
            let (np, l2, aσ) = candidateScales(g, statistics: groupStatistics[r], alpha: alpha)
            let chosen: Reconstruction = switch tp.storage {
            case .ternary: s.ternary(scale: Double(tp.scale))
            case .sparse: s.pruned
            case .exact: s.exact
            }
            figures.append(DensityFigures(
                name: t.name, storage: tp.storage, statistics: s, threshold: g.threshold, sigma: g.sigma,
                chosen: chosen, normPreserving: s.ternary(scale: np), l2Optimal: s.ternary(scale: l2),
                alphaSigma: s.ternary(scale: aσ), candidateAlpha: alpha))
        }
        var totalStatistics = SupportStatistics(shift: plan.global.map(shift(for:)) ?? 0)
        for s in statistics { totalStatistics.merge(s) }
        let sum = { (part: KeyPath<DensityFigures, Reconstruction>) in
            figures.reduce(Reconstruction.empty) { $0.combined(with: $1[keyPath: part]) }
        }
        let total = DensityFigures(
            name: nil, storage: nil, statistics: totalStatistics, threshold: plan.global?.threshold,
            sigma: plan.global?.sigma, chosen: sum(\.chosen), normPreserving: sum(\.normPreserving),
            l2Optimal: sum(\.l2Optimal), alphaSigma: sum(\.alphaSigma), candidateAlpha: alpha)
        return Point(density: plan.rule.density, plan: plan, total: total, tensors: figures)
    }
}
