import AdapterFormat
import ArgumentParser
import Commands
import Foundation
import TaskVector

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a .cpeft container holds: settings, sizes, and how each tensor is stored.",
        discussion: """
            Example:
              compeft inspect my-lora.cpeft
              compeft inspect my-lora.cpeft --json | jq '.tensors[] | select(.role == "exact")'
            """)

    @Argument(help: "Container path, '-' for stdin, or a registry reference (reads only the manifest and the index).")
    var input: String

    @OptionGroup var remote: RemoteInputOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.setUp()
        let reader = try ContainerInput.open(input, remote: remote, whole: false)
        let index = reader.index
        let size = reader.size
        let residualCount = index.tensors.reduce(0) { $0 + ($1.role == .residual ? 1 : 0) }
        let originalBytes = index.tensors.reduce(0) { $0 + $1.count * $1.dtype.byteSize }
        if common.json {
            Terminal.outJSON(CommandReports.inspectStreamed(reader, file: input))
            return
        }
        let dropped = DroppedLoRAModule.all(in: index)
        let c = index.compression
        var lines = [
            "\(input): compeft container v\(reader.majorVersion).\(reader.minorVersion), \(TextFormat.bytes(size)), written by \(index.tool)",
            "input:       \(index.inputKind)\(index.peftType.map { " (\($0))" } ?? ""), from \(index.sources.joined(separator: ", "))",
            "compression: \(c.method), \(c.scope) scope, density \(c.density)%, α \(c.alphaRequested)",
        ]
        if let s = c.scale, let sigma = c.sigma, let a = c.alpha, let total = c.total, let kept = c.keptNonzero {
            lines.append(String(format: "             σ %.6g, scale %.6g (α = %.4g), kept %d of %d (%.2f%%), threshold %.6g",
                                sigma, Double(s), a, kept, total, total > 0 ? 100 * Double(kept) / Double(total) : 0, Double(c.threshold ?? 0)))
        }
        if let rule = c.ruleSummary { lines.append("             \(rule)") }
        lines.append("tensors:     \(index.tensors.count) (\(residualCount) compressed, \(index.tensors.count - residualCount) stored exactly); \(TextFormat.bytes(originalBytes)) of tensor data → \(TextFormat.bytes(size)) (\(TextFormat.ratio(Double(originalBytes), Double(size))))")
        if !index.files.isEmpty {
            lines.append("files:       " + index.files.map { "\($0.name) (\($0.rawLength) B)" }.joined(separator: ", "))
        }
        if let warning = DroppedLoRAModule.warning(dropped) { lines.append("warning:     " + warning) }
        Terminal.out(lines.joined(separator: "\n") + "\n")
        let rows = index.tensors.map { t -> [String] in
            let storage = t.role == .exact ? "exact" : (PayloadEncoding(rawValue: t.encoding)?.description ?? "?")
            let kept = t.role == .exact ? "–" : TextFormat.percent(t.count > 0 ? Double(t.nonzero) / Double(t.count) : 0)
            return [t.name, t.shape.map(String.init).joined(separator: "×"), t.dtype.rawValue, t.initRule.rawValue, storage,
                    kept, t.role == .exact ? "–" : TextFormat.printf("%.4g", Double(t.scale)), TextFormat.bytes(t.length),
                    Self.note(t)]
        }
        Terminal.out(TextFormat.table(["tensor", "shape", "dtype", "init", "stored as", "kept", "scale", "bytes", "note"], rows,
                                  rightAligned: [5, 6, 7]))
    }

    /// The note column: the index's note, or that a LoRA factor kept nothing (see ``DroppedLoRAModule``).
    static func note(_ t: ContainerIndex.Tensor) -> String {
        if let note = t.note { return note }
        guard t.role == .residual, t.count > 0, t.nonzero == 0, DroppedLoRAModule.factor(of: t.name) != nil else { return "" }
        return "kept nothing: the module's update is zero"
    }
}
