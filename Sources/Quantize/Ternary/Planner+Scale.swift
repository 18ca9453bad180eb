public import TaskVector

/// The scale policies (``CompressionOptions/Scale``): which kept values share one magnitude, and what it is.
extension Planner {
    /// Plans every tensor of `coded` under the thresholds of `selection` and the rule's scale, and
    /// measures what that does to each LoRA module's product.
    ///
    /// - `global`: every ternary tensor takes its selection group's scale (ComPEFT's rule).
    /// - `tensor`: each tensor its own, from its values under its threshold — ‖τₜ‖/√nₜ for α auto,
    ///   α·σₜ, or α·mean|kept| for stc. With a per-tensor threshold these are the groups' own figures.
    /// - `module`: each LoRA module the norm-preserving product scale c = √(N/P) (``ModuleProduct``), stored
    ///   as binary32(√c) on both factors; a module with P = 0 (nothing of its product survives, a zero
    ///   module included) keeps nothing, its factors coded empty with scale 0. Other residuals: as `tensor`.
    ///
    /// In a rewritten gauge a module whose product is 0 keeps nothing whatever the policy, and one whose
    /// factors cannot be ternary (σ = 0, or a scale that is 0 or not finite in binary32) is stored exactly
    /// as trained — both factors, taken from `input`, so the pair stays in one gauge.
    ///
    /// - Returns: one plan per tensor; the LoRA plan (when `modules` is not empty); the tensors to code.
    static func assignScales(_ coded: [SourceTensor], input: [SourceTensor], selection: Selection, rule: CompressionRule,
                             modules: [LoRAModule], gauge: CompressionOptions.LoRAGauge, normSquared: [Double]?,
                             threads: Int, release: Bool) throws -> ([TensorPlan], LoRAPlan?, [SourceTensor]) {
        var plans = coded.map { exactPlan($0) }
        var moduleOf: [Int: Int] = [:]
        for (m, module) in modules.enumerated() {
            moduleOf[module.a] = m
            moduleOf[module.b] = m
        }
        let residuals = coded.indices.filter { coded[$0].role == .residual }
        let thresholds = coded.map { t in selection.group(t.name)?.threshold.bitPattern ?? 0 }
        let threshold = { @Sendable (i: Int) -> UInt32 in thresholds[i] }

        // Tensors with a scale of their own under a global threshold need their kept figures: one pass each.
        let ownGlobal = residuals.filter { i in
            rule.scope == .global && (rule.scale == .tensor || (rule.scale == .module && moduleOf[i] == nil))
        }
        let kept = UnsafeSlots<KeptStatistics?>(repeating: nil, count: ownGlobal.count)
        parallelFor(count: ownGlobal.count, threads: threads) { _, item in
            let i = ownGlobal[item]
            kept[item] = KeptStatistics(coded[i], thresholdBits: threshold(i), release: release)
        }
        var keptByIndex: [Int: KeptStatistics] = [:]
        for (item, i) in ownGlobal.enumerated() { keptByIndex[i] = kept[item] }

        for i in residuals {
            let t = coded[i]
            let group = selection.group(t.name)!
            switch (rule.scale, rule.scope) {
            case (.global, _):
                plans[i] = tensorPlan(t, group: group, options: rule)
            case (.tensor, .tensor), (.module, .tensor):
                plans[i] = tensorPlan(t, group: group, options: rule)
                plans[i].sigma = group.sigma
            case (.tensor, .global), (.module, .global):
                guard let stats = keptByIndex[i] else { continue }  // a module's factor: below
                plans[i] = ownPlan(t, thresholdBits: group.threshold.bitPattern, moments: selection.moments[i]!, kept: stats, rule: rule)
            }
        }
        guard !modules.isEmpty else { return (plans, nil, coded) }

        // Each module's product under its factors' thresholds.
        let measured = UnsafeSlots<Result<ModuleProduct, QuantizeError>?>(repeating: nil, count: modules.count)
        parallelFor(count: modules.count, threads: threads) { _, m in
            let module = modules[m]
            measured[m] = Result { () throws(QuantizeError) in
                let a = try finiteResidual(coded[module.a], release: release)
                let b = try finiteResidual(coded[module.b], release: release)
                return try a.withUnsafeBufferPointer { a throws(QuantizeError) in
                    try b.withUnsafeBufferPointer { b throws(QuantizeError) in
                        let n = normSquared?[m] ?? ModuleProduct.normSquared(a: a, b: b, rank: module.rank)
                        guard let p = ModuleProduct.measure(a: a, b: b, rank: module.rank, thresholdA: threshold(module.a),
                                                            thresholdB: threshold(module.b), normSquared: n)
                        else { throw QuantizeError(tensor: coded[module.a].name, "LoRA module too large: ‖B̂Â‖² does not fit in 64 bits") }
                        return p
                    }
                }
            }
        }
        var out = coded
        var reports: [LoRAPlan.Module] = []
        for (m, module) in modules.enumerated() {
            let product = try measured[m]!.get()
            let (a, b) = (module.a, module.b)
            var report = LoRAPlan.Module(name: module.name, a: coded[a].name, b: coded[b].name, rank: module.rank,
                                         gauge: gauge, product: product, scale: nil)
            var exactReason: String?
            if rule.scale == .module {
                if product.normSquared > 0, let c = product.normPreservingScale {
                    let s = Float(c.squareRoot())
                    if s.isFinite && s > 0 {
                        for i in [a, b] {
                            plans[i] = TensorPlan(name: coded[i].name, storage: .ternary, exactReason: nil, count: coded[i].count,
                                                  thresholdBits: threshold(i), scale: s)
                        }
                        report.scale = c
                    } else {
                        exactReason = "the module's scale √c \(s.isFinite ? "underflows" : "overflows") binary32"
                    }
                } else {
                    for i in [a, b] { plans[i] = emptyPlan(coded[i]) }
                    report.scale = 0
                }
            } else if gauge != .trained && product.normSquared == 0 {
                for i in [a, b] { plans[i] = emptyPlan(coded[i]) }
                report.scale = 0
            } else {
                switch (plans[a].storage, plans[b].storage) {
                case (.ternary, .ternary): report.scale = Double(plans[a].scale) * Double(plans[b].scale)
                case (.exact, .exact): report.storedExactly = true
                case (.sparse, .sparse): break  // prune: the product's error is not measured
                default:
                    // One factor ternary, the other exact: fine as trained, not in a rewritten gauge.
                    if gauge != .trained { exactReason = "a factor cannot be ternary (σ = 0, or a scale that is 0 or not finite in binary32)" }
                }
            }
            if let why = exactReason {
                report.storedExactly = true
                report.scale = nil
                if gauge == .trained {
                    for i in [a, b] { plans[i] = exactPlan(coded[i], reason: "\(why): its LoRA module is stored exactly") }
                } else {
                    // The pair goes back to the trained gauge, whole.
                    for i in [a, b] {
                        out[i] = input[i]
                        plans[i] = exactPlan(input[i], reason: "\(why) in the \(gauge.rawValue) gauge: its LoRA module is stored exactly as trained")
                    }
                    report.gauge = .trained
                }
            }
            reports.append(report)
        }
        let candidate = LoRAPlan.Candidate(gauge: gauge, squaredError: reports.reduce(0) { $0 + ($1.squaredError ?? 0) },
                                           normSquared: reports.reduce(0) { $0 + $1.product.normSquared })
        return (plans, LoRAPlan(gauge: gauge, modules: reports, candidates: [candidate]), out)
    }

    /// The plan of a tensor that is stored exactly, with the reason reports give.
    static func exactPlan(_ t: SourceTensor, reason: String? = nil) -> TensorPlan {
        TensorPlan(name: t.name, storage: .exact,
                   exactReason: reason ?? t.note ?? (t.dtype.isFloatingPoint ? "not a residual (modules_to_save or similar)" : "non-float dtype \(t.dtype.rawValue)"),
                   count: t.count, thresholdBits: 0, scale: 0)
    }

    /// The plan of a residual that keeps nothing: an empty ternary code, scale 0.
    static func emptyPlan(_ t: SourceTensor) -> TensorPlan {
        TensorPlan(name: t.name, storage: .ternary, exactReason: nil, count: t.count, thresholdBits: TensorPlan.keepNothing, scale: 0)
    }

    /// One tensor's plan under a shared threshold with a scale of its own, from its own figures.
    static func ownPlan(_ t: SourceTensor, thresholdBits: UInt32, moments: MomentAccumulator, kept: KeptStatistics,
                        rule: CompressionRule) -> TensorPlan {
        let sigma = moments.standardDeviation
        let scale: Double = switch (rule.method, rule.alpha) {
        case (.compeft, .auto): kept.nonzero > 0 ? moments.norm / Double(kept.nonzero).squareRoot() : 0
        case (.compeft, .value(let a)): a * sigma
        case (.stc, let alpha):
            kept.count > 0 ? (alpha == .auto ? 1 : alpha.multiplier) * kept.absoluteSum / Double(kept.count) : 0
        case (.prune, _): 0
        }
        var plan = TensorPlan(name: t.name, storage: .ternary, exactReason: nil, count: t.count, thresholdBits: thresholdBits,
                              scale: Float(scale), sigma: sigma)
        switch rule.method {
        case .prune:
            plan.storage = .sparse
        case .compeft, .stc:
            if sigma == 0 {
                plan.storage = .exact
                plan.exactReason = "σ = 0: nothing to scale, stored exactly"
            } else if kept.nonzero == 0 {
                plan.scale = 0  // keeps nothing: an empty code
            } else if !plan.scale.isFinite {
                plan.storage = .exact
                plan.exactReason = "scale overflows binary32: stored exactly"
            } else if !(plan.scale > 0) {
                plan.storage = .exact
                plan.exactReason = "scale is 0: stored exactly"
            }
        }
        return plan
    }
}

extension CompressionOptions.Alpha {
    /// α as a number (1 for `auto`).
    var multiplier: Double {
        if case .value(let a) = self { return a }
        return 1
    }
}

/// What one tensor keeps under a threshold: counts and Σ|kept|, in one streaming pass.
struct KeptStatistics: Sendable {
    /// Values with |τ| at or above the threshold (zeros included), and the non-zero ones.
    var count = 0
    var nonzero = 0
    /// Σ |τ| over the kept values, summed in order (binary64).
    var absoluteSum = 0.0

    init(_ t: SourceTensor, thresholdBits: UInt32, release: Bool) {
        let chunks = ResidualChunks(releasesPages: release)
        chunks.forEach(t) { _, chunk in
            for v in chunk {
                let magnitude = v.bitPattern & 0x7FFF_FFFF
                guard magnitude >= thresholdBits else { continue }
                count &+= 1
                if magnitude != 0 { nonzero &+= 1 }
                absoluteSum += Double(v.magnitude)
            }
        }
    }
}
