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
    /// - Throws: ``QuantizeError`` for invalid options, or naming the tensor that holds NaN or ±Inf.
    ///
    /// - Parameter threads: worker threads for the analysis passes; the plan does not depend on it.
    public static func plan(_ tensors: [SourceTensor], options: CompressionOptions,
                            threads: Int = 1) throws -> CompressionPlan {
        try options.validate()
        let residuals = tensors.indices.filter { tensors[$0].role == .residual }
        // Stream (handing pages back) unless the input fits in memory several times over.
        let release = !ResidualChunks.keepsMapped(tensors)
        var plans = tensors.map { t in
            TensorPlan(name: t.name, storage: .exact,
                       exactReason: t.note ?? (t.dtype.isFloatingPoint ? "not a residual (modules_to_save or similar)" : "non-float dtype \(t.dtype.rawValue)"),
                       count: t.count, thresholdBits: 0, scale: 0)
        }
        switch options.scope {
        case .global:
            let group = try analyse(residuals.map { tensors[$0] }, options: options, threads: threads, release: release)
            for i in residuals { plans[i] = tensorPlan(tensors[i], group: group, options: options) }
            var plan = CompressionPlan(options: options, global: group, perTensor: [:], tensors: plans)
            plan.releasesPages = release
            return plan
        case .tensor:
            // Many tensors: one thread per tensor (each analysed single-threaded, so results do not
            // depend on the thread count).
            let results = UnsafeSlots<Result<CompressionPlan.Group, any Error>?>(repeating: nil, count: residuals.count)
            parallelFor(count: residuals.count, threads: threads) { _, item in
                results[item] = Result { try analyse([tensors[residuals[item]]], options: options, threads: 1, release: release) }
            }
            var groups: [String: CompressionPlan.Group] = [:]
            for (item, i) in residuals.enumerated() {
                let group = try results[item]!.get()
                groups[tensors[i].name] = group
                plans[i] = tensorPlan(tensors[i], group: group, options: options)
            }
            var plan = CompressionPlan(options: options, global: nil, perTensor: groups, tensors: plans)
            plan.releasesPages = release
            return plan
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
    static func analyse(_ group: [SourceTensor], options: CompressionOptions, threads: Int,
                        release: Bool = true) throws -> CompressionPlan.Group {
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
            throw QuantizeError(tensor: group[pieces[bad].tensor].name,
                                "residual holds NaN or ±Inf; compeft will not silently keep or drop it (check the file)")
        }
        var moments = MomentAccumulator()
        for i in 0..<pieces.count { moments.merge(pieceMoments[i]) }
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
