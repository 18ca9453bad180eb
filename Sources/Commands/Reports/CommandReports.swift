public import AdapterFormat
import Foundation
import TaskVector

/// The JSON reports of compress, inspect, verify and decompress, built once for the command line's
/// `--json` and the C ABI's (and so Python's) report strings. Their schemas are in `docs/schemas/`
/// and the README's "JSON reports"; a key added here must be added there (the schema test fails
/// otherwise).
public enum CommandReports {
    /// One tensor of a container's index.
    public static func tensor(_ t: ContainerIndex.Tensor) -> [String: Any] {
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

    /// A container's compression settings and results.
    public static func compression(_ c: ContainerIndex.Compression) -> [String: Any] {
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

    /// `compress`: sizes, the compression, every tensor, the input's notes, and the LoRA modules whose
    /// update the compression zeroed (``DroppedLoRAModule``) with their warning.
    public static func compress(_ r: AdapterCompressor.Report, input: String, output: String) -> [String: Any] {
        let dropped = DroppedLoRAModule.all(in: r.index)
        return [
            "input": input, "output": output, "input_kind": r.index.inputKind,
            "input_bytes": r.inputBytes, "output_bytes": r.outputBytes,
            "ratio": r.outputBytes > 0 ? Double(r.inputBytes) / Double(r.outputBytes) : 0,
            "compression": compression(r.index.compression),
            "tensors": r.index.tensors.map(tensor),
            "notes": r.notes,
            "lora_modules_dropped": dropped.map(\.json),
            "warnings": DroppedLoRAModule.warning(dropped).map { [$0] } ?? [],
        ]
    }

    /// `inspect`: what a container holds.
    ///
    /// - Parameter file: the container's name as the caller gave it.
    public static func inspect(_ reader: ContainerReader, file: String) -> [String: Any] {
        inspect(reader, file: file, tensors: reader.index.tensors.map(tensor))
    }

    /// `inspect` with its tensors made one at a time as ``JSONText/write(_:pretty:to:)`` writes them (the
    /// command line's `--json`: a container may hold a million tensors, whose report would be gigabytes
    /// as one tree). The text is the same.
    package static func inspectStreamed(_ reader: ContainerReader, file: String) -> [String: Any] {
        let tensors = reader.index.tensors
        return inspect(reader, file: file, tensors: JSONText.Elements(count: tensors.count) { tensor(tensors[$0]) })
    }

    private static func inspect(_ reader: ContainerReader, file: String, tensors: Any) -> [String: Any] {
        let index = reader.index
        let dropped = DroppedLoRAModule.all(in: index)
        var o: [String: Any] = [
            "file": file, "bytes": reader.size, "format_version": "\(reader.majorVersion).\(reader.minorVersion)",
            "tool": index.tool, "input_kind": index.inputKind, "sources": index.sources,
            "compression": compression(index.compression),
            "tensor_bytes_original": index.tensors.reduce(0) { $0 + $1.count * $1.dtype.byteSize },
            "files": index.files.map { ["name": $0.name, "bytes": $0.rawLength] as [String: Any] },
            "tensors": tensors,
            "lora_modules_dropped": dropped.map(\.json),
            "warnings": DroppedLoRAModule.warning(dropped).map { [$0] } ?? [],
        ]
        if let p = index.peftType { o["peft_type"] = p }
        return o
    }

    /// `verify`.
    public static func verify(_ v: ContainerVerification) -> [String: Any] {
        ["file": v.file, "ok": v.problems.isEmpty, "checked": v.checked, "problems": v.problems]
    }

    /// `decompress`.
    public static func decompress(_ outcome: DecompressPlan.Outcome, plan: DecompressPlan) -> [String: Any] {
        let r = outcome.report
        return [
            "input": plan.input, "output": plan.output, "destination": plan.target.rawValue, "folder": r.isFolder,
            "files": r.files, "files_left_out": r.filesLeftOut, "tensors": r.tensorCount, "bytes_written": r.bytesWritten,
            "residual_only": r.residualOnly, "warnings": outcome.warnings,
        ]
    }

    /// Compact UTF-8 JSON with sorted keys (the C ABI's reports), or indented (the command line's).
    ///
    /// - Throws: what `JSONSerialization` throws for a value that is not JSON (never, for these reports).
    public static func encode(_ object: [String: Any], pretty: Bool = false) throws -> [UInt8] {
        var options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        if pretty { options.insert(.prettyPrinted) }
        return Array(try JSONSerialization.data(withJSONObject: object, options: options))
    }
}
