import AdapterFormat
import Foundation
import TaskVector

/// The JSON reports of the writing and checking functions: the schema of the command line's `--json`
/// reports (README, "JSON reports"), key for key, so a script can move between the two.
/// `python/tests/test_report_parity.py` compares them with the CLI's on the same inputs.
enum ReportJSON {
    static func tensor(_ t: ContainerIndex.Tensor) -> [String: Any] {
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

    static func compression(_ c: ContainerIndex.Compression) -> [String: Any] {
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

    /// `compeft compress --json`.
    static func compress(_ r: AdapterCompressor.Report, input: String, output: String) -> [String: Any] {
        [
            "input": input, "output": output, "input_kind": r.index.inputKind,
            "input_bytes": r.inputBytes, "output_bytes": r.outputBytes,
            "ratio": r.outputBytes > 0 ? Double(r.inputBytes) / Double(r.outputBytes) : 0,
            "compression": compression(r.index.compression),
            "tensors": r.index.tensors.map(tensor),
            "notes": r.notes,
        ]
    }

    /// `compeft inspect --json`.
    static func inspect(_ reader: ContainerReader) -> [String: Any] {
        let index = reader.index
        var o: [String: Any] = [
            "file": reader.path, "bytes": reader.size, "format_version": "\(reader.majorVersion).\(reader.minorVersion)",
            "tool": index.tool, "input_kind": index.inputKind, "sources": index.sources,
            "compression": compression(index.compression),
            "tensor_bytes_original": index.tensors.reduce(0) { $0 + $1.count * $1.dtype.byteSize },
            "files": index.files.map { ["name": $0.name, "bytes": $0.rawLength] as [String: Any] },
            "tensors": index.tensors.map(tensor),
        ]
        if let p = index.peftType { o["peft_type"] = p }
        return o
    }

    /// `compeft verify --json`.
    static func verify(file: String, problems: [String], checked: Int) -> [String: Any] {
        ["file": file, "ok": problems.isEmpty, "checked": checked, "problems": problems]
    }

    /// `compeft decompress --json`.
    static func decompress(_ r: AdapterDecompressor.Report, input: String, output: String) -> [String: Any] {
        ["input": input, "output": output, "folder": r.isFolder, "files": r.files, "tensors": r.tensorCount,
         "bytes_written": r.bytesWritten, "residual_only": r.residualOnly]
    }

    /// `compeft merge --json`.
    static func merge(_ r: AdapterMerger.Report, request m: MergeRequest, sources: [MergeSource]) -> [String: Any] {
        var o: [String: Any] = [
            "inputs": sources.map { src -> [String: Any] in
                var i: [String: Any] = ["path": src.path, "format": src.format.rawValue, "kind": src.kind.rawValue]
                if let p = src.peftType { i["peft_type"] = p }
                return i
            },
            "output": m.output,
            "destination": m.destinationName,
            "method": m.methodName,
            "density": m.density,
            "weights": m.options.weights,
            "lambda": m.options.lambda,
            "seed": m.options.seed,
            "scope": m.options.scope.rawValue,
            "files": r.files,
            "bytes_written": r.bytesWritten,
            "paths": ["ternary": r.ternaryCount, "dense": r.denseCount],
            "tensors": r.tensors.map { t -> [String: Any] in
                var j: [String: Any] = ["name": t.name, "dtype": t.dtype.rawValue, "shape": t.shape, "how": t.how.rawValue]
                if let p = t.path { j["path"] = p.rawValue }
                return j
            },
        ]
        if let e = m.options.method.election { o["election"] = e.rawValue }
        if let b = m.base { o["base"] = b }
        if !r.modules.isEmpty {
            var lora: [String: Any] = ["mode": m.options.lora.rawValue]
            if let rank = m.options.rank { lora["rank"] = rank }
            o["lora"] = lora
            o["lora_modules"] = r.modules.map { module -> [String: Any] in
                var j: [String: Any] = ["module": module.module, "input_ranks": module.inputRanks, "rank": module.rank,
                                        "how": module.how.rawValue]
                if let e = module.discardedEnergy { j["discarded_energy"] = e }
                return j
            }
        }
        if let c = r.compression { o["compression"] = compression(c.index.compression) }
        return o
    }

    /// Compact UTF-8 JSON, keys sorted.
    static func encode(_ object: [String: Any]) throws(ABIError) -> [UInt8] {
        do {
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch {
            throw ABIError(status: .unsupported, message: "the report cannot be written as JSON: \(error)")
        }
    }
}

/// Hands a report to the caller as a NUL-terminated string it frees with `compeft_string_free`.
enum OwnedString {
    /// Stores a `malloc`'d copy of `bytes` in `*out` (when `out` is not NULL).
    static func hand(_ bytes: [UInt8], to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws(ABIError) {
        guard let out else { return }
        guard let copy = malloc(bytes.count + 1) else {
            throw ABIError(status: .unsupported, message: "out of memory for a \(bytes.count)-byte report")
        }
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        copy.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
        out.pointee = copy.assumingMemoryBound(to: CChar.self)
    }
}
