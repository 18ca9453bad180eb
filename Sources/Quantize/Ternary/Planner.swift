public import TaskVector

/// Runs the analysis passes of ComPEFT over an input: σ, the exact top-k threshold, and the scale.
///
/// Two streaming passes over the residuals (moments and coarse histogram; then the fine histogram),
/// for either scope. Memory is independent of the input size.
public enum Planner {
    /// Plans the compression of `tensors` (which must be sorted by name, as ``TaskVectorInput`` gives them).
    ///
    /// - Throws: ``QuantizeError`` for invalid options, or naming the tensor that holds NaN or ±Inf.
    public static func plan(_ tensors: [SourceTensor], options: CompressionOptions) throws -> CompressionPlan {
        try options.validate()
        let residuals = tensors.indices.filter { tensors[$0].role == .residual }
        var plans = tensors.map { t in
            TensorPlan(name: t.name, storage: .exact,
                       exactReason: t.dtype.isFloatingPoint ? "not a residual (modules_to_save or similar)" : "non-float dtype \(t.dtype.rawValue)",
                       count: t.count, thresholdBits: 0, scale: 0)
        }
        let chunks = ResidualChunks()
        switch options.scope {
        case .global:
            let group = try analyse(residuals.map { tensors[$0] }, options: options, chunks: chunks)
            for i in residuals { plans[i] = tensorPlan(tensors[i], group: group, options: options) }
            return CompressionPlan(options: options, global: group, perTensor: [:], tensors: plans)
        case .tensor:
            var groups: [String: CompressionPlan.Group] = [:]
            for i in residuals {
                let group = try analyse([tensors[i]], options: options, chunks: chunks)
                groups[tensors[i].name] = group
                plans[i] = tensorPlan(tensors[i], group: group, options: options)
            }
            return CompressionPlan(options: options, global: nil, perTensor: groups, tensors: plans)
        }
    }

    /// σ, threshold and scale for one selection group.
    static func analyse(_ group: [SourceTensor], options: CompressionOptions, chunks: borrowing ResidualChunks) throws -> CompressionPlan.Group {
        let d = group.reduce(0) { $0 + $1.count }
        let k = CompressionOptions.keepCount(of: d, density: options.density)
        let m = d - k
        var moments = MomentAccumulator()
        var selector = ThresholdSelector(rank: m, wantAbsoluteSum: options.method == .stc)
        for t in group {
            var finite = true
            chunks.forEach(t) { _, chunk in
                guard finite else { return }
                finite = selector.addCoarse(chunk)
                moments.add(chunk)
            }
            guard finite else {
                throw QuantizeError(tensor: t.name, "residual holds NaN or ±Inf; compeft will not silently keep or drop it (check the file)")
            }
        }
        if selector.finishCoarse() {
            for t in group { chunks.forEach(t) { _, chunk in selector.addFine(chunk) } }
        }
        let selection = selector.finish()
        let sigma = moments.standardDeviation
        var scale = 0.0
        switch (options.method, options.alpha) {
        case (.compeft, .value(let a)): scale = a * sigma
        case (.compeft, .auto):
            scale = selection.keptNonzero > 0 ? moments.norm / Double(selection.keptNonzero).squareRoot() : 0
        case (.stc, let alpha):
            let a: Double = if case .value(let v) = alpha { v } else { 1 }
            scale = selection.keptCount > 0 ? a * selection.keptAbsoluteSum / Double(selection.keptCount) : 0
        case (.prune, _): scale = 0
        }
        let scale32 = Float(scale)
        return CompressionPlan.Group(
            total: d, keepTarget: k, rank: m, threshold: selection.threshold,
            keptCount: selection.keptCount, keptNonzero: selection.keptNonzero,
            sigma: sigma, norm: moments.norm, scale: scale32,
            alpha: sigma > 0 ? Double(scale32) / sigma : 0)
    }

    /// Picks one tensor's storage under its group's threshold and scale.
    static func tensorPlan(_ t: SourceTensor, group: CompressionPlan.Group, options: CompressionOptions) -> TensorPlan {
        var plan = TensorPlan(name: t.name, storage: .ternary, exactReason: nil, count: t.count,
                              thresholdBits: group.threshold.bitPattern, scale: group.scale)
        switch options.method {
        case .prune:
            plan.storage = .sparse
        case .compeft, .stc:
            if group.sigma == 0 {
                plan.storage = .exact
                plan.exactReason = "σ = 0: nothing to scale, stored exactly"
            } else if !group.scale.isFinite {
                plan.storage = .exact
                plan.exactReason = "scale overflows binary32: stored exactly"
            } else if !(group.scale > 0) {
                plan.storage = .exact
                plan.exactReason = "scale is 0: stored exactly"
            }
        }
        return plan
    }
}
