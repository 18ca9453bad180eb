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
    /// What the reader decided that the user should know: an init inferred from tensor names, tensors
    /// new in a fine-tune, files carried verbatim or left behind. Reports print every note.
    public var notes: [String] = []

    /// An input assembled in memory (e.g. a merge result to re-compress).
    public init(kind: Kind, tensors: [SourceTensor], fileMetadata: [String: [String: String]] = [:],
                auxiliaryFiles: [(name: String, bytes: [UInt8])] = [], adapterConfig: AdapterConfig? = nil,
                sourceFiles: [String] = [], inputBytes: Int) {
        self.kind = kind
        self.tensors = tensors
        self.fileMetadata = fileMetadata
        self.auxiliaryFiles = auxiliaryFiles
        self.adapterConfig = adapterConfig
        self.sourceFiles = sourceFiles
        self.inputBytes = inputBytes
    }

    /// Options that change how an input is read.
    public struct Options: Sendable {
        /// Treat non-residual adapter tensors (`modules_to_save`) as residuals too, as the reference code does.
        public var compressAll = false
        /// Force an init rule for every float tensor of an adapter, overriding `peft_type`; for a
        /// checkpoint without `--base`, `.zero` also says that its tensors are residuals even when it
        /// looks like a model.
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
        let folder = isDirectory.boolValue ? path : nil
        var aux: [(name: String, bytes: [UInt8])] = []
        var notes: [String] = []
        let entries: [Checkpoint.Entry]
        let fileMetadata: [String: [String: String]]
        let sourcePaths: [String]
        let byteCount: Int
        // The checkpoint's own lookup of its tensors is let go at the end of this block, before the tensors
        // are classified: with a million tensors it is a few hundred MB.
        do {
            let checkpoint = try Checkpoint(path: path)
            aux = checkpoint.index.map { [($0.name, $0.bytes)] } ?? []
            if let folder {
                let files = try verbatimFiles(inFolder: folder, checkpoint: checkpoint)
                aux += files.carried
                if !files.carried.isEmpty { notes.append("carried verbatim: \(files.carried.map(\.name).joined(separator: ", "))") }
                if !files.skipped.isEmpty { notes.append("not carried (not weights, config or tokenizer files): \(files.skipped.joined(separator: ", "))") }
            }
            entries = checkpoint.names.map { name in
                var e = checkpoint.entry(name)!
                if checkpoint.format != .safetensors { e.fileName = safetensorsName(for: e.fileName) }
                return e
            }
            // A model given without --base is refused (unless its names say it is adapter weights, or --init says
            // what its tensors are): the folder's config.json and the tensors' values tell.
            if basePath == nil, options.initOverride == nil, try peftTypeFromNames(checkpoint.names, file: path) == nil,
                let why = looksLikeAModel(checkpoint, folder: folder)
            {
                throw TaskVectorError(.unsupported, file: path,
                                      "\(why); pass --base BASE to compress it against its base model, or --init zero if its tensors already are residuals")
            }
            (fileMetadata, sourcePaths, byteCount) = (checkpoint.fileMetadata, checkpoint.sourcePaths, checkpoint.byteCount)
        }
        return try Self.checkpoint(entries, fileMetadata: fileMetadata, auxiliaryFiles: aux,
                                   sourceFiles: sourcePaths, inputBytes: byteCount, path: path,
                                   base: try basePath.map { try Checkpoint(path: $0) }, notes: notes, options: options)
    }

    /// A residual or full-fine-tune input from tensors already read (by ``load(path:base:options:)``
    /// from a checkpoint, or made in memory by a merge): without a base, float tensors are residuals
    /// from 0, or from the init their names imply when they are adapter weights without their config;
    /// with a base, from the base's tensor of the same name (a tensor the base lacks is stored exactly).
    /// Other tensors are stored exactly.
    ///
    /// - Parameters:
    ///   - entries: the tensors, sorted by name (bytewise), each with the output file it belongs to.
    ///   - path: the input's name, for errors.
    ///   - notes: what reading the files already decided; the decisions made here follow.
    /// - Throws: ``TaskVectorError`` (`.mismatch`) for a base tensor missing from the fine-tune or a
    ///   shape or dtype that differs from the base's; (`.unsupported`) for names of two adapter types.
    public static func checkpoint(_ entries: [Checkpoint.Entry], fileMetadata: [String: [String: String]],
                                  auxiliaryFiles: [(name: String, bytes: [UInt8])], sourceFiles: [String], inputBytes: Int,
                                  path: String, base: Checkpoint?, notes: [String] = [],
                                  options: Options = Options()) throws -> TaskVectorInput {
        var notes = notes
        guard let base else {
            if options.initOverride == .base { throw TaskVectorError(.unsupported, file: path, "--init base needs --base BASE") }
            // Adapter weights without their config: the tensor names say what the residuals are measured from.
            let names = entries.map(\.name)
            let named = options.initOverride == nil
                ? try peftTypeFromNames(names, file: path) : try? peftTypeFromNames(names, file: path)
            var tensors: [SourceTensor] = []
            tensors.reserveCapacity(entries.count)
            for e in entries {
                var role: TensorRole = e.dtype.isFloatingPoint ? .residual : .exact
                var initRule = options.initOverride ?? .zero
                if let named, options.initOverride == nil {
                    (role, initRule) = try classify(name: e.name, dtype: e.dtype, peftType: named.type, options: options)
                }
                tensors.append(SourceTensor(name: e.name, dtype: e.dtype, shape: e.shape, fileName: e.fileName,
                                            role: role, initRule: initRule, data: e.data))
            }
            if let named {
                let impliedInit = named.type == "IA3" ? "1" : "0"
                if let forced = options.initOverride {
                    notes.insert("no adapter_config.json: \(named.count) tensor name(s) look like a \(named.type == "IA3" ? "(IA)³" : "LoRA") adapter (init \(impliedInit)), but --init \(forced.rawValue) was given and is used", at: 0)
                } else {
                    notes.insert("no adapter_config.json: \(named.count) tensor name(s) say this is a \(named.type == "IA3" ? "(IA)³" : "LoRA") adapter, so its residuals are measured from \(impliedInit) (--init zero|one overrides)", at: 0)
                }
            }
            var input = TaskVectorInput(kind: .residual, tensors: tensors, fileMetadata: fileMetadata, auxiliaryFiles: auxiliaryFiles,
                                        adapterConfig: nil, sourceFiles: sourceFiles, inputBytes: inputBytes)
            input.notes = notes
            return input
        }

        let basePath = base.path
        var tensors: [SourceTensor] = []
        tensors.reserveCapacity(entries.count)
        var added: [String] = []
        for t in entries {
            let name = t.name
            guard let b = base.entry(name) else {
                // A tensor the base does not have is new by nature (a classification head): it has no
                // residual, so it is stored exactly and restored as it is.
                added.append(name)
                tensors.append(SourceTensor(
                    name: name, dtype: t.dtype, shape: t.shape, fileName: t.fileName, role: .exact, initRule: .zero,
                    data: t.data, note: "new in the fine-tune (not in the base): stored exactly"))
                continue
            }
            guard t.shape == b.shape else {
                throw TaskVectorError(.mismatch, file: path, tensor: name, "shape \(t.shape) differs from the base's \(b.shape) in '\(basePath)'")
            }
            let residual = t.dtype.isFloatingPoint && b.dtype.isFloatingPoint
            if !residual && t.dtype != b.dtype {
                throw TaskVectorError(.mismatch, file: path, tensor: name, "dtype \(t.dtype.rawValue) differs from the base's \(b.dtype.rawValue)")
            }
            tensors.append(SourceTensor(
                name: name, dtype: t.dtype, shape: t.shape, fileName: t.fileName,
                role: residual ? .residual : .exact, initRule: residual ? .base : .zero,
                data: t.data, base: residual ? b.data : nil))
        }
        let names = Set(entries.map(\.name))
        if let extra = base.names.first(where: { !names.contains($0) }) {
            throw TaskVectorError(.mismatch, file: path, tensor: extra, "is in the base '\(basePath)' but not in the fine-tune")
        }
        if !added.isEmpty {
            notes.insert("\(added.count) tensor(s) new in the fine-tune (not in the base), stored exactly: \(added.joined(separator: ", "))", at: 0)
        }
        var input = TaskVectorInput(kind: .fullFineTune, tensors: tensors, fileMetadata: fileMetadata, auxiliaryFiles: auxiliaryFiles,
                                    adapterConfig: nil, sourceFiles: sourceFiles + base.sourcePaths, inputBytes: inputBytes)
        input.notes = notes
        return input
    }

    /// The init rule and role PEFT's `peft_type` implies for one adapter tensor.
    public static func classify(name: String, dtype: DType, peftType: String, options: Options) throws -> (TensorRole, InitRule) {
        guard dtype.isFloatingPoint else { return (.exact, .zero) }
        let known: InitRule? = switch peftType.uppercased() {
        case "LORA", "ADALORA": .zero
        case "IA3": .one
        default: nil
        }
        if let forced = options.initOverride {
            if let known, known != forced {
                throw TaskVectorError(.mismatch, tensor: name,
                                      "adapter_config.json says peft_type \(peftType), whose residuals are measured from \(known == .one ? 1 : 0), but --init \(forced.rawValue) was given; drop --init (compeft reads the init from peft_type)")
            }
            return (.residual, forced)
        }
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
        let fm = FileManager.default
        let weightsPath: String
        if fm.fileExists(atPath: folder + "/adapter_model.safetensors") {
            weightsPath = folder + "/adapter_model.safetensors"
        } else if fm.fileExists(atPath: folder + "/adapter_model.bin") {
            weightsPath = folder + "/adapter_model.bin"
        } else {
            throw TaskVectorError(.io, file: folder, "PEFT adapter folder has neither adapter_model.safetensors nor adapter_model.bin")
        }
        let checkpoint = try Checkpoint(path: weightsPath)
        return try adapter(config: config, configPath: configPath, checkpoint.names.map { checkpoint.entry($0)! },
                           fileMetadata: checkpoint.fileMetadata.values.first, sourceFiles: [configPath, weightsPath],
                           inputBytes: config.raw.count + checkpoint.byteCount, options: options)
    }

    /// A PEFT adapter input from its config and tensors (read from a folder by
    /// ``load(path:base:options:)``, or made in memory by a merge): each tensor's role and init follow
    /// from `peft_type` (``classify(name:dtype:peftType:options:)``); the tensors are written back to
    /// `adapter_model.safetensors` with `fileMetadata` as its `__metadata__`.
    ///
    /// - Parameters:
    ///   - entries: the tensors, sorted by name (bytewise).
    /// - Throws: ``TaskVectorError`` naming the config file for a `peft_type` with no known init.
    public static func adapter(config: AdapterConfig, configPath: String, _ entries: [Checkpoint.Entry],
                               fileMetadata: [String: String]?, sourceFiles: [String], inputBytes: Int,
                               options: Options = Options()) throws -> TaskVectorInput {
        try config.checkRanks(entries.map { ($0.name, $0.shape) }, file: configPath)
        var tensors: [SourceTensor] = []
        for info in entries {
            let role: TensorRole
            let initRule: InitRule
            do {
                (role, initRule) = try classify(name: info.name, dtype: info.dtype, peftType: config.peftType, options: options)
            } catch var error as TaskVectorError {
                error.file = configPath
                throw error
            }
            tensors.append(SourceTensor(name: info.name, dtype: info.dtype, shape: info.shape, fileName: "adapter_model.safetensors",
                                        role: role, initRule: initRule, data: info.data))
        }
        var metadata: [String: [String: String]] = [:]
        if let fileMetadata { metadata["adapter_model.safetensors"] = fileMetadata }
        return TaskVectorInput(kind: .peftAdapter, tensors: tensors, fileMetadata: metadata,
                               auxiliaryFiles: [("adapter_config.json", config.raw)], adapterConfig: config,
                               sourceFiles: sourceFiles, inputBytes: inputBytes)
    }
}

/// The safetensors file name that replaces a `.bin` / `.h5` source on decompression.
func safetensorsName(for fileName: String) -> String {
    let stem = fileName.split(separator: ".", omittingEmptySubsequences: false).dropLast().joined(separator: ".")
    let base = stem.isEmpty ? fileName : stem
    return (base == "pytorch_model" ? "model" : base) + ".safetensors"
}
