public import TaskVector

/// How residuals are turned into ternary (or sparse) values, as asked for.
///
/// `scope`, `scale` and `loraGauge` may be left `nil`: the rule then takes what compeft recommends for
/// the kind of expert (``ExpertKind``), as ``rule(for:)`` resolves it — for a LoRA adapter the SVD-gauge
/// rule with a per-module product scale, for a full fine-tune a threshold and scale per tensor, and
/// ComPEFT's global rule otherwise.
public struct CompressionOptions: Sendable, Equatable, Codable {
    /// What replaces a kept value.
    public enum Method: String, Sendable, Codable, CaseIterable {
        /// ComPEFT: s · sign(τ) with s = α · σ (or the norm-preserving s for `alpha: .auto`).
        case compeft
        /// Sparse ternary compression: s = α · mean |kept|.
        case stc
        /// Kept values unchanged; lossy only by sparsity.
        case prune
    }

    /// Where the threshold is chosen: one top-k over all residual tensors, or one per tensor.
    public enum Scope: String, Sendable, Codable, CaseIterable {
        case global
        case tensor
    }

    /// Which values share one scale.
    public enum Scale: String, Sendable, Codable, CaseIterable {
        /// One scale for all residual tensors (ComPEFT's rule); needs a global threshold.
        case global
        /// One scale per tensor, from that tensor's values (σ, norm or mean |kept|) under its threshold.
        case tensor
        /// One scale per LoRA module, norm-preserving on the product B·A, stored split over its two
        /// factors; a residual outside a LoRA pair gets its own norm-preserving scale. Needs
        /// `--method compeft --alpha auto`.
        case module
    }

    /// The gauge LoRA factors are thresholded in: B·A = (B·M⁻¹)(M·A) for any invertible r×r M.
    public enum LoRAGauge: String, Sendable, Codable, CaseIterable {
        /// The factors as trained.
        case trained
        /// B = U·√Σ, A = √Σ·Vᵀ from the SVD of B·A (``LoRAGaugeTransform``).
        case svd
        /// The SVD gauge rotated by the orthonormal DCT-II of size r.
        case svdDCT = "svd-dct"
        /// Whichever of `svd` and `svd-dct` gives the smaller total product error (ties: `svd`).
        case auto
    }

    /// The α multiplier, or `auto` for the norm-preserving scale.
    ///
    /// Coded as the string `"auto"` or the number α.
    public enum Alpha: Sendable, Equatable, Codable, CustomStringConvertible {
        case auto
        case value(Double)

        /// `auto` (in any case) or a positive finite number; `nil` otherwise.
        public init?(_ text: String) {
            if text.lowercased() == "auto" { self = .auto; return }
            guard let v = Double(text), v.isFinite, v > 0 else { return nil }
            self = .value(v)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            let text = try (try? container.decode(String.self)) ?? String(container.decode(Double.self))
            guard let alpha = Alpha(text) else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath, debugDescription: "α must be a positive number or auto, got '\(text)'"))
            }
            self = alpha
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .auto: try container.encode("auto")
            case .value(let v): try container.encode(v)
            }
        }

        public var description: String {
            switch self {
            case .auto: "auto"
            case .value(let v): String(v)
            }
        }
    }

    public var method: Method
    /// Where thresholds are chosen; `nil`: the default for the expert (``rule(for:)``).
    public var scope: Scope?
    /// Which values share a scale; `nil`: the default for the expert.
    public var scale: Scale?
    /// The gauge of LoRA factors; `nil`: the default for the expert.
    public var loraGauge: LoRAGauge?
    /// The share of each selection group's values kept (default 20 %).
    public var density: Density
    public var alpha: Alpha

    /// 20 %, the default density of `compress`.
    public static let defaultDensity = Density.percent(20)

    public init(method: Method = .compeft, scope: Scope? = nil, scale: Scale? = nil, loraGauge: LoRAGauge? = nil,
                density: Density = defaultDensity, alpha: Alpha = .auto) {
        self.method = method
        self.scope = scope
        self.scale = scale
        self.loraGauge = loraGauge
        self.density = density
        self.alpha = alpha
    }

    /// ComPEFT's rule as the paper applies it to every kind of expert (compeft's only rule before the fidelity benchmark): one global
    /// threshold and one global scale, LoRA factors as trained. With `alpha: .value(1)` it is the
    /// authors' reference code.
    public static func paper(method: Method = .compeft, density: Density = defaultDensity, alpha: Alpha = .auto) -> CompressionOptions {
        CompressionOptions(method: method, scope: .global, scale: .global, loraGauge: .trained, density: density, alpha: alpha)
    }

    /// Checks α: positive and finite (a ``Density`` is valid by construction).
    public func validate() throws(QuantizeError) {
        if case .value(let a) = alpha, !(a.isFinite && a > 0) {
            throw QuantizeError("alpha must be a positive number or 'auto', got \(a)")
        }
    }

}
