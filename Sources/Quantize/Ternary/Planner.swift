public import TaskVector

/// Runs the analysis passes of ComPEFT over an input: σ, the exact top-k threshold, and the scale.
///
/// Streaming passes over the residuals, for either scope: first the moments, the coarse histogram
/// and the values near a sampled guess of the threshold (``ThresholdSelector/window(sampling:rank:releasesPages:)``);
/// then, only when the guess missed, the fine histogram of one bucket; and for `stc` one more pass
/// that sums |τ| over the kept values (its scale is α · mean |kept|, which needs the threshold). So
/// `compeft` and `prune` read the residuals once or twice, `stc` twice or three times. Working memory
/// is independent of the input size; an input larger than 1/8 of physical memory is streamed with its
/// pages handed back as the passes go (``ResidualChunks``).
public enum Planner {
    /// Plans the compression of `tensors` (which must be sorted by name, as ``TaskVectorInput`` gives them).
    ///
    /// - Parameters:
    ///   - kind: what the tensors are; it gives the options left `nil` their defaults
    ///     (``CompressionOptions/rule(for:)``).
    ///   - threads: worker threads for the analysis passes; the plan does not depend on it.
    /// - Throws: ``QuantizeError`` for invalid options, or naming the tensor that holds NaN or ±Inf.
    public static func plan(_ tensors: [SourceTensor], options: CompressionOptions, kind: ExpertKind,
                            threads: Int = 1) throws -> CompressionPlan {
        try plan(tensors, rule: options.rule(for: kind), threads: threads)
    }

    /// Plans the compression of `tensors` under a resolved rule.
    ///
    /// LoRA factors in the trained gauge are planned straight from the input. Otherwise each gauge the
    /// rule names (both `svd` and `svd-dct` for `auto`) rewrites every LoRA module
    /// (``LoRAGaugeTransform``, in parallel over modules) into `F32` tensors held in memory, and is
    /// planned as a whole — threshold selection over the rewritten factors and the other residuals,
    /// then the scales (``assignScales(_:selection:rule:modules:normSquared:threads:release:)``) — and
    /// the gauge with the smaller total product error Σ‖B·A − c·B̂Â‖²_F wins (ties: the one tried first,
    /// `svd`). So `auto` costs one more selection pass over the residuals than one gauge does.
    ///
    /// - Throws: ``QuantizeError`` naming the tensor that holds NaN or ±Inf.
    public static func plan(_ tensors: [SourceTensor], rule: CompressionRule, threads: Int = 1) throws -> CompressionPlan {
        // Stream (handing pages back) unless the input fits in memory several times over.
        let release = !ResidualChunks.keepsMapped(tensors)
        let modules = rule.loraGauge != .trained || rule.scale == .module ? LoRAModule.pairs(in: tensors) : []
        guard rule.loraGauge != .trained, !modules.isEmpty else {
            var plan = try candidate(tensors, input: tensors, rule: rule, modules: modules, gauge: .trained, normSquared: nil,
                                     threads: threads, release: release)
            plan.releasesPages = release
            return plan
        }
        let gauges: [CompressionOptions.LoRAGauge] = rule.loraGauge == .auto ? [.svd, .svdDCT] : [rule.loraGauge]
        let rewritten = try GaugedModules(tensors, modules: modules, gauges: gauges, threads: threads, release: release)
        var best: CompressionPlan?
        var tried: [LoRAPlan.Candidate] = []
        for (g, gauge) in gauges.enumerated() {
            let plan = try candidate(rewritten.tensors(gauge: g, of: tensors), input: tensors, rule: rule, modules: modules,
                                     gauge: gauge, normSquared: rewritten.normSquared, threads: threads, release: release)
            let mine = plan.lora!.candidates[0]
            tried.append(mine)
            if best == nil || mine.squaredError < best!.lora!.candidates[0].squaredError { best = plan }
        }
        var plan = best!
        plan.lora!.candidates = tried
        plan.releasesPages = release
        return plan
    }

    /// Plans `coded` (the input's tensors with LoRA factors in `gauge`): selection, then scales.
    ///
    /// - Parameter normSquared: ‖B·A‖²_F of each module, when the gauge transform gave it; `nil`: computed
    ///   from the factors.
    static func candidate(_ coded: [SourceTensor], input: [SourceTensor], rule: CompressionRule, modules: [LoRAModule],
                          gauge: CompressionOptions.LoRAGauge, normSquared: [Double]?, threads: Int,
                          release: Bool) throws -> CompressionPlan {
        let selection = try select(coded, rule: rule, threads: threads, release: release)
        let (plans, lora, final) = try assignScales(coded, input: input, selection: selection, rule: rule, modules: modules,
                                                    gauge: gauge, normSquared: normSquared, threads: threads, release: release)
        var plan = CompressionPlan(rule: rule, global: selection.global, perTensor: selection.perTensor, tensors: plans)
        plan.lora = lora
        plan.codedTensors = gauge == .trained ? nil : final
        return plan
    }

    /// The selection groups of `tensors`: one over all residuals (global scope) or one per residual.
    struct Selection {
        var global: CompressionPlan.Group?
        var perTensor: [String: CompressionPlan.Group]
        /// Moments of each residual tensor (global scope; the per-tensor groups hold their own), by index.
        var moments: [Int: MomentAccumulator]

        /// The group a tensor was selected in.
        func group(_ name: String) -> CompressionPlan.Group? { global ?? perTensor[name] }
    }

    static func select(_ tensors: [SourceTensor], rule: CompressionRule, threads: Int, release: Bool) throws -> Selection {
        let residuals = tensors.indices.filter { tensors[$0].role == .residual }
        switch rule.scope {
        case .global:
            let (group, moments) = try analyseWithMoments(residuals.map { tensors[$0] }, rule: rule, threads: threads, release: release)
            var byIndex: [Int: MomentAccumulator] = [:]
            for (k, i) in residuals.enumerated() { byIndex[i] = moments[k] }
            return Selection(global: group, perTensor: [:], moments: byIndex)
        case .tensor:
            // Many tensors: one thread per tensor (each analysed single-threaded, so results do not
            // depend on the thread count).
            let results = UnsafeSlots<Result<CompressionPlan.Group, any Error>?>(repeating: nil, count: residuals.count)
            parallelFor(count: residuals.count, threads: threads) { _, item in
                results[item] = Result { try analyse([tensors[residuals[item]]], rule: rule, threads: 1, release: release) }
            }
            var groups: [String: CompressionPlan.Group] = [:]
            for (item, i) in residuals.enumerated() { groups[tensors[i].name] = try results[item]!.get() }
            return Selection(global: nil, perTensor: groups, moments: [:])
        }
    }

    /// Elements per work item: pieces are the unit of parallel work and of the moment merge order.
    static let pieceSize = 1 << 22

    /// One contiguous range of one tensor of a group.
    struct Piece {
        var tensor: Int
        var range: Range<Int>
    }

    static func pieces(of group: [SourceTensor]) -> [Piece] {
        var out: [Piece] = []
        for (i, t) in group.enumerated() {
            var start = 0
            while start < t.count {
                let end = min(t.count, start + pieceSize)
                out.append(Piece(tensor: i, range: start..<end))
                start = end
            }
        }
        return out
    }

    /// σ, threshold and scale for one selection group.
    ///
    /// The group is cut into fixed pieces; threads take pieces in any order, but per-piece moments
    /// are combined in piece order and histograms are integer counts, so the result is the same for
    /// every thread count and every run.
    static func analyse(_ group: [SourceTensor], rule: CompressionRule, threads: Int,
                        release: Bool = true) throws -> CompressionPlan.Group {
        try analyseWithMoments(group, rule: rule, threads: threads, release: release).group
    }

    /// ``analyse(_:rule:threads:release:)``, with the moments of each tensor of the group too (merged
    /// from the same pieces, in piece order).
    static func analyseWithMoments(_ group: [SourceTensor], rule options: CompressionRule, threads: Int,
                                   release: Bool = true) throws -> (group: CompressionPlan.Group, moments: [MomentAccumulator]) {
        let d = group.reduce(0) { $0 + $1.count }
        let k = options.density.keepCount(of: d)
        let m = d - k
        let pieces = pieces(of: group)
        let workers = max(1, min(threads, pieces.count))
        // A sampled guess of the threshold's bucket lets pass 1 count its low bits too, and then the
        // second pass over the values is skipped (the result is the same either way). stc uses it too:
        // its Σ|kept| is a pass of its own after the threshold is known, so nothing needs pass 2.
        let window = ThresholdSelector.window(sampling: group, rank: m, releasesPages: release)
        let selectors = (0..<workers).map { _ in WorkerBox(ThresholdSelector(rank: m, window: window)) }
        let pieceMoments = UnsafeSlots(repeating: MomentAccumulator(), count: pieces.count)
        let finite = UnsafeSlots(repeating: true, count: pieces.count)
        parallelFor(count: pieces.count, threads: workers) { worker, item in
            let piece = pieces[item]
            let chunks = ResidualChunks(releasesPages: release)
            var acc = MomentAccumulator()
            var ok = true
            chunks.forEach(group[piece.tensor], range: piece.range) { _, chunk in
                guard ok else { return }
                ok = selectors[worker].value.addCoarse(chunk, moments: &acc)
            }
            pieceMoments[item] = acc
            finite[item] = ok
        }
        if let bad = (0..<pieces.count).first(where: { !finite[$0] }) {
            throw nonFinite(group[pieces[bad].tensor].name)
        }
        var moments = MomentAccumulator()
        var tensorMoments = [MomentAccumulator](repeating: MomentAccumulator(), count: group.count)
        for i in 0..<pieces.count {
            moments.merge(pieceMoments[i])
            tensorMoments[pieces[i].tensor].merge(pieceMoments[i])
        }
        for w in 1..<workers { selectors[0].value.absorbCoarse(selectors[w].value) }
        if selectors[0].value.finishCoarse() {
            let fine = (0..<workers).map { w in w == 0 ? nil : WorkerBox(selectors[0].value.fineWorker()) }
            parallelFor(count: pieces.count, threads: workers) { worker, item in
                let piece = pieces[item]
                let chunks = ResidualChunks(releasesPages: release)
                chunks.forEach(group[piece.tensor], range: piece.range) { _, chunk in
                    if worker == 0 { selectors[0].value.addFine(chunk) } else { fine[worker]!.value.addFine(chunk) }
                }
            }
            for w in 1..<workers { selectors[0].value.absorbFine(fine[w]!.value) }
        }
        let selection = selectors[0].value.finish()
        var keptAbsoluteSum = 0.0
        if options.method == .stc {
            // Σ|kept| per piece, combined in piece order: deterministic for any thread count.
            let sums = UnsafeSlots(repeating: 0.0, count: pieces.count)
            let t = selection.thresholdBits
            parallelFor(count: pieces.count, threads: workers) { _, item in
                let piece = pieces[item]
                let chunks = ResidualChunks(releasesPages: release)
                var sum = 0.0
                chunks.forEach(group[piece.tensor], range: piece.range) { _, chunk in
                    for v in chunk where v.bitPattern & 0x7FFF_FFFF >= t { sum += Double(abs(v)) }
                }
                sums[item] = sum
            }
            for i in 0..<pieces.count { keptAbsoluteSum += sums[i] }
        }
        let sigma = moments.standardDeviation
        var scale = 0.0
        switch (options.method, options.alpha) {
        case (.compeft, .value(let a)): scale = a * sigma
        case (.compeft, .auto):
            scale = selection.keptNonzero > 0 ? moments.norm / Double(selection.keptNonzero).squareRoot() : 0
        case (.stc, let alpha):
            let a: Double = if case .value(let v) = alpha { v } else { 1 }
            scale = selection.keptCount > 0 ? a * keptAbsoluteSum / Double(selection.keptCount) : 0
        case (.prune, _): scale = 0
        }
        let scale32 = Float(scale)
        let result = CompressionPlan.Group(
            total: d, keepTarget: k, rank: m, threshold: selection.threshold,
            keptCount: selection.keptCount, keptNonzero: selection.keptNonzero,
            sigma: sigma, norm: moments.norm, scale: scale32,
            alpha: sigma > 0 ? Double(scale32) / sigma : 0)
        return (result, tensorMoments)
    }

    /// Picks one tensor's storage under its group's threshold and scale.
    static func tensorPlan(_ t: SourceTensor, group: CompressionPlan.Group, options: CompressionRule) -> TensorPlan {
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
