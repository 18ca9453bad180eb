import AdapterFormat
import Commands
import Foundation
import Quantize
import TaskVector

/// The text reports of compress and merge (their JSON reports are ``CommandReports``, shared with the
/// C ABI; analyze's are in `Reports+Analyze.swift`).
enum Reports {
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
