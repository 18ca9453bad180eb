public import TaskVector

/// What kind of fine-tune a set of tensors is: it decides the defaults of ``CompressionOptions``.
public enum ExpertKind: String, Sendable, Codable, CaseIterable {
    /// LoRA factors (`lora_A`/`lora_B` pairs, init 0): PEFT `peft_type: LORA`, or a file whose tensor
    /// names say so.
    case lora
    /// (IA)³ vectors (init 1).
    case ia3
    /// A full fine-tune compressed against its base.
    case fullFineTune = "full-fine-tune"
    /// Anything else: a residual file, another PEFT method.
    case other
}

extension TaskVectorInput {
    /// The kind of expert this input is.
    ///
    /// A PEFT adapter is what its `peft_type` says (`LORA`, `IA3`; AdaLoRA and others are ``ExpertKind/other``,
    /// their factors do not form plain products B·A); a residual file is LoRA when it holds `lora_A`/`lora_B`
    /// pairs measured from 0 and (IA)³ when its residuals are measured from 1; a full fine-tune is one.
    public var expertKind: ExpertKind {
        switch kind {
        case .fullFineTune: return .fullFineTune
        case .peftAdapter:
            switch adapterConfig?.peftType.uppercased() {
            case "LORA": return .lora
            case "IA3": return .ia3
            default: return .other
            }
        case .residual:
            if !LoRAModule.pairs(in: tensors).isEmpty { return .lora }
            let residuals = tensors.lazy.filter { $0.role == .residual }
            if !residuals.isEmpty && residuals.allSatisfy({ $0.initRule == .one }) { return .ia3 }
            return .other
        }
    }
}

/// A compression rule with every choice made: what ``Planner`` runs and what a container records.
///
/// ``CompressionOptions/rule(for:)`` makes one from the options asked for and the kind of expert.
public struct CompressionRule: Sendable, Equatable, CustomStringConvertible {
    public var method: CompressionOptions.Method
    public var scope: CompressionOptions.Scope
    public var scale: CompressionOptions.Scale
    /// The gauge asked for (``CompressionOptions/LoRAGauge/auto`` stays `auto`; the plan says which
    /// gauge it chose).
    public var loraGauge: CompressionOptions.LoRAGauge
    public var density: Density
    public var alpha: CompressionOptions.Alpha

    public init(method: CompressionOptions.Method, scope: CompressionOptions.Scope, scale: CompressionOptions.Scale,
                loraGauge: CompressionOptions.LoRAGauge, density: Density, alpha: CompressionOptions.Alpha) {
        self.method = method
        self.scope = scope
        self.scale = scale
        self.loraGauge = loraGauge
        self.density = density
        self.alpha = alpha
    }

    /// The options that ask for exactly this rule, whatever the expert.
    public var options: CompressionOptions {
        CompressionOptions(method: method, scope: scope, scale: scale, loraGauge: loraGauge, density: density, alpha: alpha)
    }

    /// e.g. `compeft, global threshold, module scale, LoRA gauge auto, density 10%, α auto`.
    public var description: String {
        "\(method.rawValue), \(scope.rawValue) threshold, \(scale.rawValue) scale, LoRA gauge \(loraGauge.rawValue), "
            + "density \(density), α \(alpha)"
    }
}

extension CompressionOptions {
    /// The rule these options ask for on an expert of `kind`: each option left `nil` takes its default.
    ///
    /// | option | default |
    /// |---|---|
    /// | `scope` | `tensor` for a full fine-tune (unless `scale` is `global`), `global` otherwise |
    /// | `scale` | `module` for LoRA with `method` compeft and α auto; else `tensor` with a per-tensor threshold, `global` with a global one |
    /// | `loraGauge` | `auto` when the scale is `module` on LoRA, `trained` otherwise |
    ///
    /// So a LoRA adapter gets the SVD-gauge rule with a per-module product scale, a full fine-tune a
    /// threshold and a norm-preserving scale per tensor, and (IA)³ and other experts ComPEFT's global
    /// rule; an explicit α (the paper's s = α·σ) or `stc` on LoRA gives ComPEFT's rule in the trained
    /// gauge, as compeft applied it before.
    ///
    /// - Throws: ``QuantizeError`` for options that do not fit together: `scale: .module` without
    ///   `method: .compeft` and α auto; `scale: .global` with a per-tensor threshold; a `loraGauge`
    ///   other than `trained` on an expert that is not LoRA; `loraGauge: .auto` with `method: .prune`
    ///   (the choice compares ternary product errors); an invalid α.
    public func rule(for kind: ExpertKind) throws(QuantizeError) -> CompressionRule {
        try validate()
        let normPreserving = method == .compeft && alpha == .auto
        let scope = scope ?? (kind == .fullFineTune && scale != .global ? .tensor : .global)
        let scale = scale ?? (kind == .lora && normPreserving ? .module : (scope == .tensor ? .tensor : .global))
        if scale == .module && !normPreserving {
            throw QuantizeError("--scale module is the norm-preserving scale of each LoRA module's product: it needs --method compeft and --alpha auto (got --method \(method.rawValue) --alpha \(alpha)); use --scale global or tensor for α·σ or stc")
        }
        if scale == .global && scope == .tensor {
            throw QuantizeError("--scale global needs --scope global (one scale over all tensors needs one threshold over all of them); with --scope tensor use --scale tensor or module")
        }
        if let gauge = loraGauge, gauge != .trained, kind != .lora {
            let what = switch kind {
            case .ia3: "an (IA)³ adapter"
            case .fullFineTune: "a full fine-tune"
            default: "not a LoRA adapter"
            }
            throw QuantizeError("--lora-gauge \(gauge.rawValue) applies to LoRA adapters; this input is \(what) (use --lora-gauge trained, or leave it out)")
        }
        let gauge = loraGauge ?? (kind == .lora && scale == .module ? .auto : .trained)
        if gauge == .auto && method == .prune {
            throw QuantizeError("--lora-gauge auto chooses the gauge by the error of the ternary product; with --method prune name the gauge (trained, svd or svd-dct)")
        }
        return CompressionRule(method: method, scope: scope, scale: scale, loraGauge: gauge, density: density, alpha: alpha)
    }
}
