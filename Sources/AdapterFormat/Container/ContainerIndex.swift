import Quantize
public import TaskVector

/// The index of a container: metadata and where every tensor's payload is, in its JSON form.
///
/// Format 1.1 stores the index in binary (docs/FORMAT.md, "Index, format 1.1"); format 1.0 stored this
/// JSON form itself. Whatever the version, a reader presents the index as this value, and it is the
/// report and metadata form compeft shows (`inspect --json`, the C ABI's `compeft_metadata_json`):
/// offsets are absolute, counts and raw lengths spelled out, fields a version does not store are `nil`.
public struct ContainerIndex: Codable, Sendable, Equatable {
    /// What was compressed and how.
    public struct Compression: Codable, Sendable, Equatable {
        public var method: String
        public var scope: String
        /// Density K in percent, as requested.
        public var density: Double
        /// α as requested: "auto" or the number.
        public var alphaRequested: String
        /// Global scope: d, k, m, threshold, kept counts, σ, ‖τ‖, scale s and α = s/σ actually used.
        public var total: Int?
        public var keepTarget: Int?
        public var rank: Int?
        public var threshold: Float?
        public var keptCount: Int?
        public var keptNonzero: Int?
        public var sigma: Double?
        /// ‖τ‖₂ (format 1.0 only; 1.1 does not store it).
        public var norm: Double?
        public var scale: Float?
        public var alpha: Double?
        /// Which values share one scale, as `compress --scale` chose: `tensor` (under a global threshold) or
        /// `module` (one per LoRA module, on its product B·A). `nil`: the scope's own rule — one scale for all
        /// residuals with a global threshold (ComPEFT's), one per tensor with a per-tensor threshold. Informational
        /// (format 1.1 container field 6): every tensor's `scaleBits` is what decodes.
        public var scaleScope: String?
        /// The gauge the LoRA factors are stored in when it is not the trained one: `svd` or `svd-dct`
        /// (container field 8). Decompressed `lora_A` and `lora_B` then do not approximate the trained factors
        /// one by one; their product B·A does. `nil`: as trained (or not a LoRA adapter).
        public var loraGauge: String?
        /// The gauge asked for when it is not the one used: `auto` (container field 10).
        public var loraGaugeRequested: String?
    }

    /// A verbatim file (adapter_config.json, a shard index).
    public struct File: Codable, Sendable, Equatable {
        public var name: String
        /// Where its zstd frame lies in the container; 0 and 0 when it is stored inside the index.
        public var offset: Int
        public var length: Int
        /// Bytes of the file itself.
        public var rawLength: Int
        /// Hex digits of the XXH64 of the stored frame: all 16 in format 1.0, the low 8 in 1.1; `nil` for
        /// a file stored inside the index (the index checksum covers it).
        public var xxh64: String?
        /// `true` when the file is stored inside the index (format 1.1), `nil` otherwise.
        public var inline: Bool?

        public init(name: String, offset: Int, length: Int, rawLength: Int, xxh64: String?, inline: Bool? = nil) {
            self.name = name
            self.offset = offset
            self.length = length
            self.rawLength = rawLength
            self.xxh64 = xxh64
            self.inline = inline
        }
    }

    /// One tensor.
    public struct Tensor: Codable, Sendable, Equatable {
        public var name: String
        /// The output file it belongs to (e.g. `adapter_model.safetensors`, a shard name).
        public var file: String
        public var dtype: DType
        public var shape: [Int]
        /// `residual` or `exact`.
        public var role: TensorRole
        /// What the residual is measured from (`zero`, `one`, `base`).
        public var initRule: InitRule
        /// Why it is stored exactly, when it is.
        public var note: String?
        /// Payload encoding id; see docs/FORMAT.md.
        public var encoding: Int
        public var count: Int
        /// Kept values (|τ| ≥ t) and kept non-zero values (coded).
        public var kept: Int
        public var nonzero: Int
        /// The decoded magnitude of kept values as the bit pattern of an IEEE binary32, and readable.
        public var scaleBits: UInt32
        public var scale: Float
        /// Per-tensor statistics (tensor scope).
        public var sigma: Double?
        public var alpha: Double?
        /// Where the stored payload lies in the container, and its decoded length (the stored length for
        /// `ternary-gap`; 0 for an encoding this compeft does not know).
        public var offset: Int
        public var length: Int
        public var rawLength: Int
        /// Hex digits of the XXH64 of the stored payload: all 16 in format 1.0, the low 8 in 1.1.
        public var xxh64: String
    }

    public var format: String = "compeft"
    public var tool: String
    public var inputKind: String
    public var peftType: String?
    public var sources: [String]
    public var compression: Compression
    /// `__metadata__` of each source safetensors file, by file name.
    public var fileMetadata: [String: [String: String]]
    public var files: [File]
    public var tensors: [Tensor]
}

extension ContainerIndex.Compression {
    init(options: CompressionOptions, plan: CompressionPlan, kind: ExpertKind) {
        method = options.method.rawValue
        scope = plan.rule.scope.rawValue
        density = options.density.percent
        alphaRequested = options.alpha.description
        if let g = plan.global {
            total = g.total
            keepTarget = g.keepTarget
            rank = g.rank
            threshold = g.threshold
            keptCount = g.keptCount
            keptNonzero = g.keptNonzero
            sigma = g.sigma
            norm = g.norm
            // The group's scale is the ternary tensors' only under a global scale; otherwise every tensor
            // carries its own (format 1.1 writes the group's as 0, so an empty code needs no field).
            if plan.rule.scale == .global {
                scale = g.scale
                alpha = g.alpha
            }
        }
        // Recorded only where it is not the scope's own rule, so the paper's rule writes what it always wrote.
        let scopeRule: CompressionOptions.Scale = plan.rule.scope == .global ? .global : .tensor
        if plan.rule.scale != scopeRule { scaleScope = plan.rule.scale.rawValue }
        if kind == .lora, let used = plan.lora?.gauge, used != .trained {
            loraGauge = used.rawValue
            if plan.rule.loraGauge != used { loraGaugeRequested = plan.rule.loraGauge.rawValue }
        }
    }
}

extension ContainerIndex.Compression {
    /// The scale and gauge of the rule in words, for reports; `nil` for the scope's own rule (one scale
    /// over a global threshold, or one per tensor with a per-tensor threshold) in the trained gauge.
    ///
    /// For example `scale per LoRA module (norm-preserving on B·A), per tensor elsewhere; LoRA factors in the
    /// svd gauge, chosen by auto (their product B·A is kept, not each factor)`.
    public var ruleSummary: String? {
        var parts: [String] = []
        switch scaleScope {
        case "module": parts.append("scale per LoRA module (norm-preserving on B·A), per tensor elsewhere")
        case "tensor": parts.append("scale per tensor")
        case let other?: parts.append("scale per \(other)")
        case nil: break
        }
        if let g = loraGauge {
            parts.append("LoRA factors in the \(g) gauge" + (loraGaugeRequested.map { ", chosen by \($0)" } ?? "")
                + " (their product B·A is kept, not each factor)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
