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

    static func analyze(_ a: DensityAnalysis, perTensor: Bool) -> [String: Any] {
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

    static func analyzeText(_ a: DensityAnalysis, perTensor: Bool) -> String {
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
        return out.joined(separator: "\n")
    }
}
