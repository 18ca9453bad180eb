import AdapterFormat
import Foundation
import Quantize
import TaskVector

/// The JSON and text reports of compress and inspect. The JSON keys are the stable schema
/// documented in the README.
enum Reports {
    static func tensorJSON(_ t: ContainerIndex.Tensor) -> [String: Any] {
        var o: [String: Any] = [
            "name": t.name, "file": t.file, "dtype": t.dtype.rawValue, "shape": t.shape, "role": t.role.rawValue,
            "init": t.initRule.rawValue, "encoding": PayloadEncoding(rawValue: t.encoding)?.description ?? "unknown(\(t.encoding))",
            "count": t.count, "kept": t.kept, "nonzero": t.nonzero, "scale": Double(t.scale),
            "stored_bytes": t.length, "offset": t.offset,
        ]
        if let note = t.note { o["note"] = note }
        if let s = t.sigma { o["sigma"] = s }
        if let a = t.alpha { o["alpha"] = a }
        return o
    }

    static func compressionJSON(_ c: ContainerIndex.Compression) -> [String: Any] {
        var o: [String: Any] = ["method": c.method, "scope": c.scope, "density": c.density, "alpha_requested": c.alphaRequested]
        if let v = c.total { o["total"] = v }
        if let v = c.keepTarget { o["keep_target"] = v }
        if let v = c.keptCount { o["kept"] = v }
        if let v = c.keptNonzero { o["kept_nonzero"] = v }
        if let v = c.threshold { o["threshold"] = Double(v) }
        if let v = c.sigma { o["sigma"] = v }
        if let v = c.scale { o["scale"] = Double(v) }
        if let v = c.alpha { o["alpha"] = v }
        if let v = c.scaleScope { o["scale_scope"] = v }
        if let v = c.loraGauge { o["lora_gauge"] = v }
        if let v = c.loraGaugeRequested { o["lora_gauge_requested"] = v }
        return o
    }

    static func compress(_ r: AdapterCompressor.Report, input: String, output: String) -> [String: Any] {
        [
            "input": input, "output": output, "input_kind": r.index.inputKind,
            "input_bytes": r.inputBytes, "output_bytes": r.outputBytes,
            "ratio": r.outputBytes > 0 ? Double(r.inputBytes) / Double(r.outputBytes) : 0,
            "compression": compressionJSON(r.index.compression),
            "tensors": r.index.tensors.map(tensorJSON),
            "notes": r.notes,
        ]
    }

    static func compressText(_ r: AdapterCompressor.Report, input: String, output: String) -> String {
        let c = r.index.compression
        let residual = r.index.tensors.filter { $0.role == .residual }
        let kept = residual.reduce(0) { $0 + $1.nonzero }
        let total = residual.reduce(0) { $0 + $1.count }
        var lines = [
            "\(input) → \(output)",
            "  \(TextFormat.bytes(r.inputBytes)) → \(TextFormat.bytes(r.outputBytes))  (\(TextFormat.ratio(Double(r.inputBytes), Double(r.outputBytes))) smaller)",
            "  \(c.method), \(c.scope) scope, density \(c.density)%: kept \(kept) of \(total) residual values (\(TextFormat.percent(total > 0 ? Double(kept) / Double(total) : 0)))",
        ]
        if let s = c.scale, let sigma = c.sigma, let a = c.alpha, c.method != "prune" {
            lines.append(String(format: "  scale %.6g = α %.4g × σ %.6g (α %@)", Double(s), a, sigma, c.alphaRequested))
        }
        if let rule = c.ruleSummary { lines.append("  \(rule)") }
        let exact = r.index.tensors.filter { $0.role == .exact }
        if !exact.isEmpty {
            lines.append("  \(exact.count) tensor(s) stored exactly: " + exact.prefix(4).map(\.name).joined(separator: ", ") + (exact.count > 4 ? ", …" : ""))
        }
        lines += r.notes.map { "  note: \($0)" }
        return lines.joined(separator: "\n")
    }
}
