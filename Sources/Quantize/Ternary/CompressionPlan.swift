import Foundation
public import TaskVector

/// What compression decided for one tensor.
public struct TensorPlan: Sendable, Equatable {
    /// How the tensor is stored.
    public enum Storage: String, Sendable, Codable {
        /// Original bytes, lossless.
        case exact
        /// Kept positions and signs; every kept non-zero value decodes to ±scale.
        case ternary
        /// Kept positions and their `Float` residual values.
        case sparse
    }

    public var name: String
    public var storage: Storage
    /// Why a tensor is stored exactly, when it is (e.g. "modules_to_save", "non-float dtype", "σ = 0").
    public var exactReason: String?
    /// Number of values.
    public var count: Int
    /// |τ| bit pattern at or above which a value is kept.
    public var thresholdBits: UInt32
    /// The magnitude every kept value decodes to (ternary storage).
    public var scale: Float
    /// The σ of this tensor's own residual, when its scale is its own and comes from its statistics
    /// (per-tensor scales); containers record it with α = scale/σ.
    public var sigma: Double?

    public init(name: String, storage: Storage, exactReason: String?, count: Int, thresholdBits: UInt32, scale: Float,
                sigma: Double? = nil) {
        self.name = name
        self.storage = storage
        self.exactReason = exactReason
        self.count = count
        self.thresholdBits = thresholdBits
        self.scale = scale
        self.sigma = sigma
    }

    /// A magnitude threshold above every finite value and ±Inf: a tensor coded with it keeps nothing.
    public static let keepNothing: UInt32 = 0x7F80_0001
}

/// The result of analysing an input: shared statistics and one ``TensorPlan`` per tensor.
public struct CompressionPlan: Sendable {
    /// Statistics of one selection group (all residuals for global scope, one tensor for tensor scope).
    public struct Group: Sendable, Equatable {
        /// d, k (= int(d·K/100)), m (= d − k).
        public var total: Int
        public var keepTarget: Int
        public var rank: Int
        public var threshold: Float
        public var keptCount: Int
        public var keptNonzero: Int
        /// Unbiased standard deviation σ and Euclidean norm of the dense residual, in double.
        public var sigma: Double
        public var norm: Double
        /// The scale s given to kept values and α = s/σ (0 when σ = 0).
        public var scale: Float
        public var alpha: Double
    }

    /// The rule planned, every option resolved.
    public var rule: CompressionRule
    /// The global group (scope global), or nil for scope tensor.
    public var global: Group?
    /// Per-tensor groups for scope tensor, by name.
    public var perTensor: [String: Group]
    /// One entry per input tensor, in input (name) order.
    public var tensors: [TensorPlan]
    /// Passes over this input hand its mapped pages back as they go (it may not fit in memory); false
    /// when it fits several times over (``ResidualChunks/keepsMapped(_:)``). Coding follows it too.
    public var releasesPages = true
    /// What the rule did to LoRA modules; `nil` when it does not treat them as modules (LoRA factors as
    /// trained under a global or per-tensor scale, or an input without LoRA pairs).
    public var lora: LoRAPlan?
    /// The tensors the coder reads, one per input tensor in input order: the input's own, except LoRA
    /// factors rewritten in another gauge (``LoRAPlan/gauge``), held in memory as `F32`. `nil`: the
    /// input's tensors as they are.
    public var codedTensors: [SourceTensor]?

    public init(rule: CompressionRule, global: Group?, perTensor: [String: Group], tensors: [TensorPlan]) {
        self.rule = rule
        self.global = global
        self.perTensor = perTensor
        self.tensors = tensors
    }

    /// The tensor the coder reads in place of the input's tensor at `index`.
    public func codedTensor(_ index: Int, of input: [SourceTensor]) -> SourceTensor {
        codedTensors?[index] ?? input[index]
    }
}

/// What a rule did to an input's LoRA modules (``LoRAModule``).
public struct LoRAPlan: Sendable {
    /// One module: its factors' names, the figures of its ternary product, and the product scale.
    public struct Module: Sendable, Equatable {
        public var name: String
        /// `lora_A` and `lora_B`.
        public var a: String
        public var b: String
        public var rank: Int
        /// The gauge the module's factors are stored in.
        public var gauge: CompressionOptions.LoRAGauge
        /// N, I and P of the stored (ternary) factors; ``ModuleProduct``.
        public var product: ModuleProduct
        /// c, the decoded product's scale: the norm-preserving √(N/P) for a per-module scale (in binary64;
        /// the factors store binary32(√c) each), s_A·s_B otherwise; 0 when nothing of the product is kept;
        /// `nil` when the product is not c·B̂Â (stored exactly, pruned, or one factor exact and one ternary).
        public var scale: Double?
        /// Both factors are stored exactly (as trained): the product is restored as it is.
        public var storedExactly = false

        public init(name: String, a: String, b: String, rank: Int, gauge: CompressionOptions.LoRAGauge, product: ModuleProduct,
                    scale: Double?, storedExactly: Bool = false) {
            self.name = name
            self.a = a
            self.b = b
            self.rank = rank
            self.gauge = gauge
            self.product = product
            self.scale = scale
            self.storedExactly = storedExactly
        }

        /// ‖B·A − c·B̂Â‖²_F: 0 when stored exactly, `nil` when the product is not ternary.
        public var squaredError: Double? {
            storedExactly ? 0 : scale.map { product.squaredError(scale: $0) }
        }

        /// ‖B·A − c·B̂Â‖_F / ‖B·A‖_F (0 for a zero module), or `nil` when the product is not ternary.
        public var relativeError: Double? {
            squaredError.map { product.normSquared > 0 ? ($0 / product.normSquared).squareRoot() : 0 }
        }

        /// ⟨B·A, c·B̂Â⟩ / (‖B·A‖·‖c·B̂Â‖) = I/√(N·P) for c > 0; 1 when stored exactly; 0 when nothing of the
        /// product is kept; `nil` when the product is not ternary or B·A = 0.
        public var cosine: Double? {
            guard product.normSquared > 0 else { return nil }
            if storedExactly { return 1 }
            guard let c = scale else { return nil }
            guard c > 0, product.ternaryNormSquared > 0 else { return 0 }
            return product.inner / (product.normSquared * Double(product.ternaryNormSquared)).squareRoot()
        }

        /// The product keeps nothing: both factors are coded empty.
        public var keepsNothing: Bool { !storedExactly && scale == 0 }
    }

    /// A gauge the rule tried, with its total product error.
    public struct Candidate: Sendable, Equatable {
        public var gauge: CompressionOptions.LoRAGauge
        /// Σ over modules of ‖B·A − c·B̂Â‖²_F, and of ‖B·A‖²_F.
        public var squaredError: Double
        public var normSquared: Double

        /// √(squaredError / normSquared), or 0 for a zero update.
        public var relativeError: Double { normSquared > 0 ? (squaredError / normSquared).squareRoot() : 0 }
    }

    /// The gauge the factors are stored in (`trained`, `svd` or `svd-dct`; never `auto`).
    public var gauge: CompressionOptions.LoRAGauge
    public var modules: [Module]
    /// The gauges tried, in order (one unless the rule asked for `auto`); the chosen one is among them.
    public var candidates: [Candidate]
}

extension CompressionPlan {
    /// What the plan did that a user should know, one sentence each: the gauge LoRA factors are stored
    /// in (their decompressed values then differ from the trained ones; their product does not), and
    /// LoRA modules whose product keeps nothing.
    public var notes: [String] {
        guard let lora else { return [] }
        var out: [String] = []
        if lora.gauge != .trained {
            var choice = ""
            if lora.candidates.count > 1 {
                choice = " (--lora-gauge \(rule.loraGauge.rawValue): relative product error "
                    + lora.candidates.map { "\($0.gauge.rawValue) \(formatted($0.relativeError))" }.joined(separator: ", ") + ")"
            }
            out.append("LoRA factors are stored in the \(lora.gauge.rawValue) gauge\(choice): decompressed lora_A and lora_B reproduce each module's product B·A, not the trained factors one by one (--lora-gauge trained keeps those)")
        }
        let back = lora.modules.filter { $0.gauge != lora.gauge }
        if !back.isEmpty {
            out.append("\(back.count) LoRA module(s) stored exactly as trained (their factors cannot be ternary in the \(lora.gauge.rawValue) gauge): " + Self.list(back.map(\.name)))
        }
        let empty = lora.modules.filter(\.keepsNothing).filter { $0.product.normSquared > 0 }
        if !empty.isEmpty {
            out.append("\(empty.count) of \(lora.modules.count) LoRA module(s) keep nothing of their product B·A at this density (their factors are coded empty): " + Self.list(empty.map(\.name)))
        }
        return out
    }

    static func list(_ names: [String]) -> String {
        names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", …" : "")
    }
}

/// Four significant digits.
func formatted(_ x: Double) -> String {
    let digits = x == 0 ? 0 : max(0, 3 - Int((log10(abs(x))).rounded(.down)))
    return String(format: "%.\(min(digits, 8))f", x)
}
