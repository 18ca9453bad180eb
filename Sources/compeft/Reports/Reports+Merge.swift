import AdapterFormat
import Foundation
import TaskVector

/// The JSON and text reports of `merge`. The JSON keys are the stable schema documented in the README.
extension Reports {
    static func destinationName(_ d: AdapterMerger.Destination, output: String) -> String {
        switch d {
        case .folder: "folder"
        case .file: "safetensors"
        case .container: "cpeft"
        }
    }

    static func describe(_ s: MergeSource) -> String {
        if let p = s.peftType { return "\(p) adapter" }
        return s.kind == .fullFineTune ? "full fine-tune" : "residual"
    }

    static func merge(_ r: AdapterMerger.Report, settings s: MergePlan, sources: [MergeSource]) -> [String: Any] {
        var o: [String: Any] = [
            "inputs": sources.map { src -> [String: Any] in
                var i: [String: Any] = ["path": src.path, "format": src.format.rawValue, "kind": src.kind.rawValue]
                if let p = src.peftType { i["peft_type"] = p }
                return i
            },
            "output": s.output,
            "destination": destinationName(s.destination, output: s.output),
            "method": s.method.rawValue,
            "density": s.density.percent,
            "weights": s.options.weights,
            "lambda": s.options.lambda,
            "seed": s.options.seed,
            "scope": s.options.scope.rawValue,
            "files": r.files,
            "bytes_written": r.bytesWritten,
            "paths": ["ternary": r.ternaryCount, "dense": r.denseCount],
            "tensors": r.tensors.map { t -> [String: Any] in
                var j: [String: Any] = ["name": t.name, "dtype": t.dtype.rawValue, "shape": t.shape, "how": t.how.rawValue]
                if let p = t.path { j["path"] = p.rawValue }
                return j
            },
        ]
        if let e = s.election { o["election"] = e.rawValue }
        if let b = s.base { o["base"] = b }
        if !r.modules.isEmpty {
            var lora: [String: Any] = ["mode": s.options.lora.rawValue]
            if let rank = s.options.rank { lora["rank"] = rank }
            o["lora"] = lora
            o["lora_modules"] = r.modules.map { m -> [String: Any] in
                var j: [String: Any] = ["module": m.module, "input_ranks": m.inputRanks, "rank": m.rank, "how": m.how.rawValue]
                if let e = m.discardedEnergy { j["discarded_energy"] = e }
                return j
            }
        }
        if let c = r.compression {
            o["compression"] = compressionJSON(c.index.compression)
        }
        return o
    }

    static func mergeText(_ r: AdapterMerger.Report, settings s: MergePlan, sources: [MergeSource]) -> String {
        var how = s.method.rawValue
        if s.method != .taskArithmetic { how += ", density \(TextFormat.number(s.density.percent))%" }
        if let e = s.election { how += ", \(e.rawValue) election" }
        if s.options.lambda != 1 { how += ", λ \(TextFormat.number(s.options.lambda))" }
        let kinds = Set(sources.map(describe)).sorted().joined(separator: " + ")
        let shown = s.output == "-" ? "stdout" : s.output + (s.destination.isFolder ? "/" : "")
        var lines = [
            "merged \(sources.count) \(kinds) input(s) (\(how)) → \(shown) (\(r.tensors.count) tensors, \(TextFormat.bytes(r.bytesWritten)))",
        ]
        if !r.modules.isEmpty {
            let hows = Set(r.modules.map(\.how.rawValue)).sorted().joined(separator: ", ")
            let ranks = Set(r.modules.map(\.rank)).sorted().map(String.init).joined(separator: "/")
            var line = "  LoRA: \(r.modules.count) module(s), \(hows), rank \(ranks)"
            if let worst = r.modules.filter({ $0.discardedEnergy != nil }).max(by: { $0.discardedEnergy! < $1.discardedEnergy! }) {
                line += String(format: "; discarded energy up to %.3g%% (%@)", worst.discardedEnergy! * 100, worst.module)
            }
            lines.append(line)
        }
        let merged = r.tensors.filter { $0.how == .merged }
        if !merged.isEmpty {
            lines.append("  \(merged.count) residual tensor(s): \(r.ternaryCount) merged on ternary codes, \(r.denseCount) expanded to floats")
        }
        let copied = r.tensors.filter { $0.how == .copied }
        if !copied.isEmpty {
            lines.append("  \(copied.count) tensor(s) copied from the first input (not residuals, identical in every input): "
                         + copied.prefix(3).map(\.name).joined(separator: ", ") + (copied.count > 3 ? ", …" : ""))
        }
        if let c = r.compression {
            let residual = c.index.tensors.filter { $0.role == .residual }
            let kept = residual.reduce(0) { $0 + $1.nonzero }
            let total = residual.reduce(0) { $0 + $1.count }
            lines.append("  compressed: \(c.index.compression.method), density \(TextFormat.number(c.index.compression.density))%: kept \(kept) of \(total) residual values")
        }
        return lines.joined(separator: "\n")
    }
}

extension AdapterMerger.Destination {
    var isFolder: Bool {
        if case .folder = self { true } else { false }
    }
}

extension TextFormat {
    /// A number without a trailing `.0`.
    static func number(_ x: Double) -> String {
        x == x.rounded() && x.magnitude < 1e15 ? String(Int(x)) : String(x)
    }
}
