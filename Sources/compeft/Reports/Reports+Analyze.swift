import AdapterFormat
import Foundation
import Quantize
import TaskVector

/// `analyze`'s JSON and text reports. The JSON keys are the stable schema documented in the README.
extension Reports {
    /// A number, or `null` when undefined or not finite (JSON has no NaN).
    static func number(_ x: Double?) -> Any {
        guard let x, x.isFinite else { return NSNull() }
        return x
    }

    static func reconstructionJSON(_ r: Reconstruction) -> [String: Any] {
        ["scale": number(r.scale), "relative_error": number(r.relativeError), "cosine": number(r.cosine),
         "norm_ratio": number(r.normRatio)]
    }

    static func candidatesJSON(_ f: DensityFigures) -> [String: Any] {
        var alphaSigma = reconstructionJSON(f.alphaSigma)
        alphaSigma["alpha"] = f.candidateAlpha
        return ["norm_preserving": reconstructionJSON(f.normPreserving), "l2_optimal": reconstructionJSON(f.l2Optimal),
                "alpha_sigma": alphaSigma]
    }

    /// The figures every level (density total or one tensor) shares.
    static func figuresJSON(_ f: DensityFigures) -> [String: Any] {
        var o: [String: Any] = [
            "count": f.statistics.count, "kept": f.statistics.kept, "kept_nonzero": f.statistics.keptNonzero,
            "kept_fraction": f.keptFraction, "energy_share": number(f.energyShare),
            "reconstruction": reconstructionJSON(f.chosen), "candidates": candidatesJSON(f),
        ]
        if let t = f.threshold { o["threshold"] = Double(t) }
        if let s = f.sigma { o["sigma"] = number(s) }
        return o
    }

    /// A LoRA density's update figures: in total and per module.
    static func loraUpdateJSON(_ l: LoRAUpdateError) -> [String: Any] {
        let total = l.total
        return [
            "relative_error": number(total.relativeError), "cosine": number(total.cosine), "norm_ratio": number(total.normRatio),
            "factor_error": number(l.factorTotal.relativeError),
            "modules": l.modules.map { m -> [String: Any] in
                ["module": m.module, "rank": m.rank, "scale": m.scale, "norm": m.update.referenceSquaredNorm.squareRoot(),
                 "relative_error": number(m.update.relativeError), "cosine": number(m.update.cosine),
                 "norm_ratio": number(m.update.normRatio), "factor_error": number(m.factors.relativeError)]
            },
        ]
    }

    static func targetJSON(_ t: DensityAnalysis.TargetSearch) -> [String: Any] {
        [
            "error": t.target, "measure": t.measure.rawValue, "density": number(t.found?.density.percent),
            "density_error": number(t.found?.error),
            "below": t.below.map { ["density": $0.density.percent, "error": number($0.error)] as [String: Any] } ?? NSNull(),
            "extra_compressions": t.extraCompressions,
        ]
    }

    static func analyze(_ a: DensityAnalysis, perTensor: Bool, target: DensityAnalysis.TargetSearch? = nil) -> [String: Any] {
        var o: [String: Any] = [
            "input": a.input, "input_kind": a.kind.rawValue, "input_bytes": a.inputBytes,
            "method": a.rule.method.rawValue, "scope": a.rule.scope.rawValue,
            "alpha_requested": a.rule.alpha.description,
            "residual_tensors": a.residualTensors, "residual_values": a.residualValues, "f16_bytes": a.f16Bytes,
            "norm": number(a.densities.first?.point.total.norm),
            "densities": a.densities.map { densityJSON($0, a, perTensor: perTensor) },
        ]
        if let p = a.peftType { o["peft_type"] = p }
        if let b = a.base { o["base"] = b }
        if let target { o["target"] = targetJSON(target) }
        return o
    }

    static func densityJSON(_ d: DensityAnalysis.Density, _ a: DensityAnalysis, perTensor: Bool) -> [String: Any] {
        var o = figuresJSON(d.point.total)
        o["density"] = d.point.density.percent
        o["container_bytes"] = d.sizes.containerBytes
        o["payload_bytes"] = d.sizes.payloadBytes
        o["residual_payload_bytes"] = d.sizes.residualPayloadBytes
        o["bits_per_param"] = number(d.bitsPerParameter)
        o["container_bits_per_param"] = number(d.containerBitsPerParameter)
        o["ratio_vs_input"] = number(d.ratioVsInput(a.inputBytes))
        o["ratio_vs_f16"] = number(d.ratioVsF16)
        if let lora = d.lora { o["lora_update"] = loraUpdateJSON(lora) }
        if perTensor {
            o["tensors"] = d.point.tensors.map { f -> [String: Any] in
                var t = figuresJSON(f)
                let bytes = d.sizes.tensorPayloadBytes[f.name ?? ""] ?? 0
                t["name"] = f.name ?? ""
                t["storage"] = f.storage?.rawValue ?? ""
                t["payload_bytes"] = bytes
                t["bits_per_param"] = number(f.statistics.count > 0 ? 8 * Double(bytes) / Double(f.statistics.count) : nil)
                t["ratio_vs_f16"] = number(bytes > 0 && f.statistics.count > 0 ? 2 * Double(f.statistics.count) / Double(bytes) : nil)
                return t
            }
        }
        return o
    }

    // MARK: - Text

    static func fixed(_ x: Double?, _ digits: Int) -> String {
        x.map { String(format: "%.\(digits)f", $0) } ?? "–"
    }

    static func scale(_ x: Double?) -> String { x.map { String(format: "%.4g", $0) } ?? "–" }

    /// A total's scale: the shared one, or why there is none (tensor scope, stored exactly, no values).
    static func totalScale(_ x: Double?, _ total: DensityFigures, _ scope: CompressionOptions.Scope, chosen: Bool) -> String {
        if let x { return scale(x) }
        if total.statistics.count == 0 { return "–" }
        return scope == .tensor ? "per tensor" : (chosen ? "exact" : "–")
    }

    static func percentOrDash(_ x: Double?) -> String { x.map(TextFormat.percent) ?? "–" }

    static func densityLabel(_ k: Double) -> String { String(format: "%g%%", k) }

    static func ratioOrDash(_ x: Double?) -> String { x.map { String(format: "%.2f×", $0) } ?? "–" }

    /// The LoRA section: the error of the updates ΔW = s·B·A beside that of the factors.
    static func loraText(_ a: DensityAnalysis, perTensor: Bool) -> [String] {
        guard a.densities.contains(where: { $0.lora != nil }) else { return [] }
        var out = ["", "LoRA modules: error of the factors [A, B], and error and cosine of the update ΔW = s·B·A they give "
                   + "(what the model adds); a module is lost when its ΔW decodes to 0"]
        let rows = a.densities.map { d -> [String] in
            guard let l = d.lora else { return [densityLabel(d.point.density.percent)] + Array(repeating: "–", count: 5) }
            let worst = l.modules.max { ($0.update.relativeError ?? 0) < ($1.update.relativeError ?? 0) }
            let lost = l.modules.filter { $0.update.referenceSquaredNorm > 0 && $0.update.squaredNorm == 0 }.count
            return [densityLabel(d.point.density.percent), fixed(l.factorTotal.relativeError, 4), fixed(l.total.relativeError, 4),
                    fixed(l.total.cosine, 4), fixed(worst?.update.relativeError, 4), "\(lost) of \(l.modules.count)"]
        }
        out.append(TextFormat.table(["density", "error", "error", "cosine", "worst module", "modules lost"],
                                    rows, rightAligned: Set(0..<6), groups: [("factors", 1..<2), ("update ΔW", 2..<6)]))
        if perTensor {
            for d in a.densities {
                guard let l = d.lora else { continue }
                out.append("")
                out.append("density \(densityLabel(d.point.density.percent)), per LoRA module:")
                out.append(TextFormat.table(
                    ["module", "rank", "s", "‖ΔW‖", "factor error", "update error", "cosine"],
                    l.modules.map { m in
                        [m.module, String(m.rank), scale(m.scale), scale(m.update.referenceSquaredNorm.squareRoot()),
                         fixed(m.factors.relativeError, 4), fixed(m.update.relativeError, 4), fixed(m.update.cosine, 4)]
                    },
                    rightAligned: Set(1..<7)))
            }
        }
        return out
    }

    static func targetText(_ t: DensityAnalysis.TargetSearch) -> String {
        let what = t.measure == .loraUpdate ? "update error of the LoRA modules" : "error of τ̂"
        let below = t.below.map { b in "; \(densityLabel(b.density.percent)) gives \(fixed(b.error, 4))" } ?? ""
        guard let found = t.found else {
            return "target error \(t.target) (\(what)): no density meets it\(below)"
        }
        return "target error \(t.target) (\(what)): the smallest density that meets it is "
            + "\(densityLabel(found.density.percent)) (\(fixed(found.error, 4)))\(below)"
    }

    static func analyzeText(_ a: DensityAnalysis, perTensor: Bool, target: DensityAnalysis.TargetSearch? = nil) -> String {
        let kind = a.kind.rawValue + (a.peftType.map { " (\($0))" } ?? "") + (a.base.map { " against \($0)" } ?? "")
        var out = [
            "\(a.input): \(kind), \(TextFormat.bytes(a.inputBytes)); \(a.residualTensors) residual tensor(s), "
                + "\(a.residualValues) values (f16 copy \(TextFormat.bytes(a.f16Bytes)))",
            "\(a.rule.method.rawValue), \(a.rule.scope.rawValue) scope, α \(a.rule.alpha); sizes are the "
                + "containers compress writes, errors are of the τ̂ they decode to",
            "",
        ]
        let rows = a.densities.map { d -> [String] in
            let t = d.point.total
            return [densityLabel(d.point.density.percent), TextFormat.percent(t.keptFraction), percentOrDash(t.energyShare),
                    TextFormat.bytes(d.sizes.containerBytes), ratioOrDash(d.ratioVsInput(a.inputBytes)),
                    TextFormat.bytes(d.sizes.residualPayloadBytes), fixed(d.bitsPerParameter, 3), ratioOrDash(d.ratioVsF16),
                    totalScale(t.chosen.scale, t, a.rule.scope, chosen: true),
                    fixed(t.chosen.relativeError, 4), fixed(t.chosen.cosine, 4)]
        }
        out.append(TextFormat.table(
            ["density", "kept", "‖τ‖² kept", "container", "vs input", "residual", "bits/param", "vs f16", "scale",
             "error", "cosine"],
            rows, rightAligned: Set(0..<11), groups: [("size", 3..<8), ("reconstruction", 8..<11)]))
        out.append("")
        out.append("scale candidates: τ̂ = ±s on the kept values; error ‖τ̂ − τ‖/‖τ‖, norm ratio ‖τ̂‖/‖τ‖")
        let alpha = a.densities.first?.point.total.candidateAlpha ?? 1
        let candidateGroups = [("‖τ‖/√n, norm-preserving", 1..<4), ("mean|kept|, L2-optimal", 4..<7),
                               (String(format: "α·σ, α = %g", alpha), 7..<10)]
        let candidateRows = a.densities.map { d -> [String] in
            let t = d.point.total
            return [densityLabel(d.point.density.percent)] + [t.normPreserving, t.l2Optimal, t.alphaSigma].flatMap {
                [totalScale($0.scale, t, a.rule.scope, chosen: false), fixed($0.relativeError, 4), fixed($0.normRatio, 3)]
            }
        }
        out.append(TextFormat.table(["density"] + Array(repeating: ["s", "error", "‖τ̂‖/‖τ‖"], count: 3).flatMap { $0 },
                                candidateRows, rightAligned: Set(0..<10), groups: candidateGroups))
        if perTensor {
            for d in a.densities {
                out.append("")
                out.append("density \(densityLabel(d.point.density.percent)), per tensor:")
                let rows = d.point.tensors.map { f -> [String] in
                    let bytes = d.sizes.tensorPayloadBytes[f.name ?? ""] ?? 0
                    let n = Double(f.statistics.count)
                    return [f.name ?? "", String(f.statistics.count), TextFormat.percent(f.keptFraction),
                            percentOrDash(f.energyShare), TextFormat.bytes(bytes),
                            fixed(n > 0 ? 8 * Double(bytes) / n : nil, 3), ratioOrDash(bytes > 0 && n > 0 ? 2 * n / Double(bytes) : nil),
                            f.storage == .ternary ? scale(f.chosen.scale) : (f.storage?.rawValue ?? "–"),
                            fixed(f.chosen.relativeError, 4), fixed(f.chosen.cosine, 4)]
                        + [f.normPreserving, f.l2Optimal, f.alphaSigma].flatMap { [fixed($0.relativeError, 4), fixed($0.normRatio, 3)] }
                }
                out.append(TextFormat.table(
                    ["tensor", "values", "kept", "‖τ‖² kept", "payload", "bits/param", "vs f16", "scale", "error", "cosine"]
                        + Array(repeating: ["error", "‖τ̂‖/‖τ‖"], count: 3).flatMap { $0 },
                    rows, rightAligned: Set(1..<16),
                    groups: [("reconstruction", 7..<10), ("‖τ‖/√n", 10..<12), ("mean|kept|", 12..<14), ("α·σ", 14..<16)]))
            }
        }
        out += loraText(a, perTensor: perTensor)
        if let target {
            out.append("")
            out.append(targetText(target))
        }
        return out.joined(separator: "\n")
    }
}
