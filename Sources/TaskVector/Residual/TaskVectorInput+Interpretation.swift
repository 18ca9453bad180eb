import Foundation

/// How an input without an `adapter_config.json` is read: what its tensor names and files say it is,
/// so that no input is compressed as something it is not without the report saying so.
extension TaskVectorInput {
    /// The PEFT adapter type that tensor names reveal, when a checkpoint has no `adapter_config.json`.
    ///
    /// PEFT names its trainable tensors after the method: `lora_A`/`lora_B` (and `lora_embedding_A`/`_B`)
    /// for LoRA, `ia3_l` for (IA)³. A file holding such tensors is an adapter's weights, and its
    /// residuals are measured from the method's init (0 for LoRA factors, 1 for (IA)³ vectors) — not
    /// from 0 as a plain residual file's would be.
    ///
    /// - Returns: `LORA` or `IA3` with the count of tensors that say so, or `nil` when no name does.
    /// - Throws: ``TaskVectorError`` (`.unsupported`) when names of both methods appear: the init of
    ///   each tensor would be a guess.
    static func peftTypeFromNames(_ names: [String], file: String) throws -> (type: String, count: Int)? {
        let lora = names.filter(isLoRAFactorName)
        let ia3 = names.filter(isIA3VectorName)
        switch (lora.isEmpty, ia3.isEmpty) {
        case (true, true): return nil
        case (false, true): return ("LORA", lora.count)
        case (true, false): return ("IA3", ia3.count)
        case (false, false):
            throw TaskVectorError(.unsupported, file: file,
                                  "holds both LoRA tensors ('\(lora[0])') and (IA)³ tensors ('\(ia3[0])') but no adapter_config.json; add the adapter's config, or pass --init zero or --init one to say what every residual is measured from")
        }
    }

    static func isLoRAFactorName(_ name: String) -> Bool {
        hasComponent(name, loraFactorParts)
    }

    private static let loraFactorParts = ["lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"]
    private static let ia3VectorParts = ["ia3_l"]

    static func isIA3VectorName(_ name: String) -> Bool {
        hasComponent(name, ia3VectorParts)
    }

    /// Whether one of the dot-separated parts of `name` is one of `components` (without splitting it into
    /// an array: this runs once per tensor, and a checkpoint may hold a million). An ASCII name is
    /// compared bytewise, which gives `String`'s answer for it.
    private static func hasComponent(_ name: String, _ components: [String]) -> Bool {
        if name.isASCIIOnly, let found = name.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
            var start = 0
            for end in 0...bytes.count where end == bytes.count || bytes[end] == UInt8(ascii: ".") {
                let part = UnsafeBufferPointer(rebasing: bytes[start..<end])
                if components.contains(where: { $0.utf8.count == part.count && $0.utf8.elementsEqual(part) }) { return true }
                start = end + 1
            }
            return false
        }) {
            return found
        }
        var rest = name[...]
        let matches = { (part: Substring) in components.contains { part == $0 } }
        while let dot = rest.firstIndex(of: ".") {
            if matches(rest[..<dot]) { return true }
            rest = rest[rest.index(after: dot)...]
        }
        return matches(rest)
    }

    /// Why a checkpoint without `--base` looks like a whole model rather than a task vector, or `nil`.
    ///
    /// Two signs, either enough: a `config.json` with a `model_type` beside the weights (what
    /// `save_pretrained` writes for a model, never for a residual), or a normalisation weight
    /// (a tensor named `…norm….weight` / `ln_….weight`) whose mean is near 1 — in a task vector that
    /// tensor is a difference and its mean is near 0.
    static func looksLikeAModel(_ checkpoint: Checkpoint, folder: String?) -> String? {
        if let folder, let modelType = modelType(inFolder: folder) {
            return "its folder holds a config.json with model_type '\(modelType)': it is a model, not a task vector"
        }
        for name in checkpoint.names where isNormalisationWeight(name) {
            guard let data = checkpoint.data(name), data.dtype.isFloatingPoint, data.count >= 8, data.count <= 1 << 20 else { continue }
            var values = [Float](repeating: 0, count: data.count)
            values.withUnsafeMutableBufferPointer { data.loadFloats(from: 0, into: $0) }
            let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
            if mean.isFinite, mean > 0.5, mean < 2 {
                return "tensor '\(name)' is a normalisation weight with mean \(String(format: "%.3g", mean)): these are a model's weights, not a task vector"
            }
        }
        return nil
    }

    static func isNormalisationWeight(_ name: String) -> Bool {
        // Only a name holding "weight" can end in that part (most names are ruled out without splitting them).
        guard name.utf8Offset(of: "weight") != nil else { return false }
        let parts = name.split(separator: ".")
        guard parts.count >= 2, parts.last == "weight" else { return false }
        let module = parts[parts.count - 2].lowercased()
        return module.contains("norm") || module.hasPrefix("ln_") || module == "ln"
    }

    /// The `model_type` of a `config.json` in `folder`, when there is one (a config that cannot be read
    /// is ignored here: it is carried verbatim, never interpreted further).
    static func modelType(inFolder folder: String) -> String? {
        guard let bytes = try? readSmallRegularFile(folder + "/config.json", limit: 1 << 20),
            let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
        else { return nil }
        return object["model_type"] as? String
    }

    /// The non-weight files of a checkpoint folder that a restored model needs to load
    /// (`config.json`, `generation_config.json`, tokenizer files …), to be carried verbatim; and the
    /// names of the other files, which are not.
    ///
    /// Carried: regular files named `*.json`, `*.txt`, `*.model`, `*.jinja` or `*.tiktoken`, up to
    /// ``maxCarriedFileBytes`` each, except the weights themselves, their shard index and
    /// `adapter_config.json`. Everything else (optimizer states, training arguments, other weights,
    /// links) is listed as not carried.
    static func verbatimFiles(inFolder folder: String, checkpoint: Checkpoint) throws
        -> (carried: [(name: String, bytes: [UInt8])], skipped: [String])
    {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        let weights = Set(checkpoint.fileNames).union(checkpoint.index.map { [$0.name] } ?? [])
        let carriedSuffixes = [".json", ".txt", ".model", ".jinja", ".tiktoken"]
        var carried: [(name: String, bytes: [UInt8])] = []
        var skipped: [String] = []
        for name in names where !weights.contains(name) && name != "adapter_config.json" && !name.hasPrefix(".") {
            let path = folder + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                carriedSuffixes.contains(where: { name.hasSuffix($0) }), Int(info.st_size) <= maxCarriedFileBytes
            else {
                skipped.append(name)
                continue
            }
            carried.append((name, try readSmallRegularFile(path, limit: maxCarriedFileBytes)))
        }
        return (carried, skipped)
    }

    /// Files larger than this are not carried verbatim (a tokenizer.json is a few MiB).
    public static let maxCarriedFileBytes = 64 << 20

    /// The whole of a regular file of at most `limit` bytes; FIFOs, devices and larger files are refused.
    static func readSmallRegularFile(_ path: String, limit: Int) throws -> [UInt8] {
        let source = try FileByteSource(path: path)
        guard source.size <= limit else {
            throw TaskVectorError(.io, file: path, "is \(source.size) bytes; at most \(limit) are read")
        }
        return try source.bytes(0..<source.size)
    }
}
