import Foundation

/// Everything compeft reads from an input: the tensors, how each becomes a residual, and the files
/// that must come back unchanged on decompression.
public struct TaskVectorInput: Sendable {
    /// What kind of input this was.
    public enum Kind: String, Sendable, Codable {
        /// A Hugging Face PEFT adapter folder.
        case peftAdapter = "peft-adapter"
        /// A safetensors file (or sharded checkpoint) of residuals, init 0.
        case residual
        /// A full fine-tune, compressed against its base model.
        case fullFineTune = "full-fine-tune"
    }

    public var kind: Kind
    /// Tensors sorted by name (bytewise).
    public var tensors: [SourceTensor]
    /// `__metadata__` of each source file, by file name.
    public var fileMetadata: [String: [String: String]]
    /// Files restored verbatim on decompression (`adapter_config.json`, a shard index), by name.
    public var auxiliaryFiles: [(name: String, bytes: [UInt8])]
    /// The parsed adapter config, for PEFT inputs.
    public var adapterConfig: AdapterConfig?
    /// Names of the files read, for the record.
    public var sourceFiles: [String]
    /// Bytes of the input's own files (the adapter or fine-tune, not the base).
    public var inputBytes: Int

    /// Options that change how an input is read.
    public struct Options: Sendable {
        /// Treat non-residual adapter tensors (`modules_to_save`) as residuals too, as the reference code does.
        public var compressAll = false
        /// Force an init rule for every float tensor of an adapter, overriding `peft_type`.
        public var initOverride: InitRule?
        public init(compressAll: Bool = false, initOverride: InitRule? = nil) {
            self.compressAll = compressAll
            self.initOverride = initOverride
        }
    }

    /// Reads `path` — a PEFT adapter folder, a safetensors file / sharded checkpoint, or (with `base`) a
    /// full fine-tune — and decides each tensor's role and init.
    ///
    /// - Throws: ``TaskVectorError`` naming the file and tensor for unreadable input, a tensor missing
    ///   from the base, or a shape or dtype mismatch.
    public static func load(path: String, base basePath: String? = nil, options: Options = Options()) throws -> TaskVectorInput {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        let exists = path == "-" || fm.fileExists(atPath: path, isDirectory: &isDirectory)
        guard exists else { throw TaskVectorError(.io, file: path, "no such file or folder") }

        if isDirectory.boolValue && fm.fileExists(atPath: path + "/adapter_config.json") {
            guard basePath == nil else {
                throw TaskVectorError(.unsupported, file: path, "is a PEFT adapter; --base applies to full fine-tunes only")
            }
            return try loadAdapter(folder: path, options: options)
        }
        let checkpoint = try Checkpoint(path: path)
        var aux: [(String, [UInt8])] = []
        if let index = checkpoint.indexJSON { aux.append((indexFileName(checkpoint), index)) }
        var metadata: [String: [String: String]] = [:]
        for (name, file) in checkpoint.files where !file.metadata.isEmpty { metadata[name] = file.metadata }
        let sources = checkpoint.files.map { $0.file.path }

        guard let basePath else {
            if options.initOverride == .base { throw TaskVectorError(.unsupported, file: path, "--init base needs --base BASE") }
            let initRule = options.initOverride ?? .zero
            let tensors = checkpoint.names.map { name -> SourceTensor in
                let loc = checkpoint.locate(name)!
                let file = checkpoint.files[loc.file]
                let role: TensorRole = loc.tensor.dtype.isFloatingPoint ? .residual : .exact
                return SourceTensor(name: name, dtype: loc.tensor.dtype, shape: loc.tensor.shape, fileName: file.name,
                                    role: role, initRule: initRule, data: file.file.data(of: loc.tensor))
            }
            return TaskVectorInput(kind: .residual, tensors: tensors, fileMetadata: metadata, auxiliaryFiles: aux,
                                   adapterConfig: nil, sourceFiles: sources, inputBytes: checkpoint.byteCount)
        }

        let base = try Checkpoint(path: basePath)
        var tensors: [SourceTensor] = []
        for name in checkpoint.names {
            let loc = checkpoint.locate(name)!
            let file = checkpoint.files[loc.file]
            guard let baseLoc = base.locate(name) else {
                throw TaskVectorError(.mismatch, file: basePath, tensor: name, "is in the fine-tune '\(path)' but not in the base")
            }
            let t = loc.tensor
            let b = baseLoc.tensor
            guard t.shape == b.shape else {
                throw TaskVectorError(.mismatch, file: path, tensor: name, "shape \(t.shape) differs from the base's \(b.shape) in '\(basePath)'")
            }
            let residual = t.dtype.isFloatingPoint && b.dtype.isFloatingPoint
            if !residual && t.dtype != b.dtype {
                throw TaskVectorError(.mismatch, file: path, tensor: name, "dtype \(t.dtype.rawValue) differs from the base's \(b.dtype.rawValue)")
            }
            tensors.append(SourceTensor(
                name: name, dtype: t.dtype, shape: t.shape, fileName: file.name,
                role: residual ? .residual : .exact, initRule: residual ? .base : .zero,
                data: file.file.data(of: t), base: residual ? base.files[baseLoc.file].file.data(of: b) : nil))
        }
        if let extra = base.names.first(where: { checkpoint.locate($0) == nil }) {
            throw TaskVectorError(.mismatch, file: path, tensor: extra, "is in the base '\(basePath)' but not in the fine-tune")
        }
        return TaskVectorInput(kind: .fullFineTune, tensors: tensors, fileMetadata: metadata, auxiliaryFiles: aux,
                               adapterConfig: nil, sourceFiles: sources + base.files.map { $0.file.path },
                               inputBytes: checkpoint.byteCount)
    }

    private static func indexFileName(_ checkpoint: Checkpoint) -> String {
        if checkpoint.path.hasSuffix(".index.json") { return URL(fileURLWithPath: checkpoint.path).lastPathComponent }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: checkpoint.path)) ?? []
        return entries.contains("model.safetensors.index.json") ? "model.safetensors.index.json"
            : (entries.first { $0.hasSuffix(".safetensors.index.json") } ?? "model.safetensors.index.json")
    }

    /// The init rule and role PEFT's `peft_type` implies for one adapter tensor.
    public static func classify(name: String, dtype: DType, peftType: String, options: Options) throws -> (TensorRole, InitRule) {
        guard dtype.isFloatingPoint else { return (.exact, .zero) }
        if let forced = options.initOverride { return (.residual, forced) }
        let adapterInit: InitRule
        let isResidual: Bool
        switch peftType.uppercased() {
        case "LORA", "ADALORA":
            adapterInit = .zero
            isResidual = name.contains("lora_") && !name.contains("lora_magnitude_vector")
        case "IA3":
            adapterInit = .one
            isResidual = name.contains("ia3_")
        default:
            throw TaskVectorError(.unsupported, tensor: name,
                                  "peft_type '\(peftType)' has no known init rule; pass --init zero or --init one to say what its residuals are measured from")
        }
        if isResidual { return (.residual, adapterInit) }
        return options.compressAll ? (.residual, adapterInit) : (.exact, adapterInit)
    }

    static func loadAdapter(folder: String, options: Options) throws -> TaskVectorInput {
        let configPath = folder + "/adapter_config.json"
        let configFile = try MappedFile(path: configPath)
        let config = try AdapterConfig(bytes: Array(configFile.bytes), path: configPath)
        let weightsPath = folder + "/adapter_model.safetensors"
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            throw TaskVectorError(.io, file: folder, "PEFT adapter folder has no adapter_model.safetensors")
        }
        let file = try SafeTensorsFile(path: weightsPath)
        let names = file.tensors.map(\.name).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var tensors: [SourceTensor] = []
        for name in names {
            let info = file.info(name)!
            let role: TensorRole
            let initRule: InitRule
            do {
                (role, initRule) = try classify(name: name, dtype: info.dtype, peftType: config.peftType, options: options)
            } catch var error as TaskVectorError {
                error.file = configPath
                throw error
            }
            tensors.append(SourceTensor(name: name, dtype: info.dtype, shape: info.shape, fileName: "adapter_model.safetensors",
                                        role: role, initRule: initRule, data: file.data(of: info)))
        }
        var metadata: [String: [String: String]] = [:]
        if !file.metadata.isEmpty { metadata["adapter_model.safetensors"] = file.metadata }
        return TaskVectorInput(kind: .peftAdapter, tensors: tensors, fileMetadata: metadata,
                               auxiliaryFiles: [("adapter_config.json", config.raw)], adapterConfig: config,
                               sourceFiles: [configPath, weightsPath], inputBytes: config.raw.count + file.file.bytes.count)
    }
}
