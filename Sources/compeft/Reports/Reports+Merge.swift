import AdapterFormat
import Commands
import Foundation
import TaskVector

/// The text report of `merge`.
extension Reports {
    static func describe(_ s: MergeSource) -> String {
        if let p = s.peftType { return "\(p) adapter" }
        return s.kind == .fullFineTune ? "full fine-tune" : "residual"
    }

    static func mergeText(_ outcome: MergePlan.Outcome, plan s: MergePlan) -> String {
        let r = outcome.report
        let sources = outcome.sources
        var how = s.method.rawValue
        if s.method != .taskArithmetic { how += ", density \(TextFormat.number(s.density.percent))%" }
        if let e = s.election { how += ", \(e.rawValue) election" }
        if s.options.lambda != 1 { how += ", λ \(TextFormat.number(s.options.lambda))" }
        let kinds = Set(sources.map(describe)).sorted().joined(separator: " + ")
        let shown = s.output == "-" ? "stdout" : s.output + (s.target == .folder ? "/" : "")
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

extension TextFormat {
    /// A number without a trailing `.0`.
    static func number(_ x: Double) -> String {
        x == x.rounded() && x.magnitude < 1e15 ? String(Int(x)) : String(x)
    }
}
