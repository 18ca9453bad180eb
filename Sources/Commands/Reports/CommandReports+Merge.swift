import AdapterFormat
import TaskVector

extension CommandReports {
    /// `merge`: the inputs, the settings, what was written and how each tensor and LoRA module was merged.
    public static func merge(_ outcome: MergePlan.Outcome, plan s: MergePlan) -> [String: Any] {
        let r = outcome.report
        var o: [String: Any] = [
            "inputs": outcome.sources.map { src -> [String: Any] in
                var i: [String: Any] = ["path": src.path, "format": src.format.rawValue, "kind": src.kind.rawValue]
                if let p = src.peftType { i["peft_type"] = p }
                return i
            },
            "output": s.output,
            "destination": s.target.rawValue,
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
            o["compression"] = compression(c.index.compression)
            o["lora_modules_dropped"] = DroppedLoRAModule.all(in: c.index).map(\.json)
        }
        o["warnings"] = outcome.warnings
        return o
    }
}
