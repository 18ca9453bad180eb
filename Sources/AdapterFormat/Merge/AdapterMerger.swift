import Foundation
import Quantize
public import TaskVector

/// Merges the task vectors of several inputs into one, tensor by tensor, with PEFT's merge methods.
///
/// The inputs (``MergeSource``) must be of one kind — LoRA adapters, (IA)³ adapters, or residuals /
/// full fine-tunes — and hold the same tensors with the same shapes (LoRA factors may differ in
/// rank). Each tensor is merged on its own, so memory is about (number of inputs + 1) × the largest
/// tensor, never the whole model:
///
/// - A residual tensor (a LoRA factor pair aside) is merged with ``TensorMerge`` on τᵢ = valueᵢ − init
///   and written as init + merged τ: init is 0 for LoRA factors and residual files, 1 for (IA)³
///   vectors, and the base's tensor for residuals when a base is given.
/// - When every input stores the tensor as a sign-form ternary code (a `.cpeft` container) and the
///   method's trim cannot cut into any expert's support — task arithmetic; TIES or magnitude-prune
///   whose top-k keeps at least each expert's non-zeros — the merge runs on the bits with
///   ``TernaryMerge`` and never expands an expert to floats. Its result equals the dense path's
///   value for value. DARE always expands.
/// - A LoRA module's factors are merged as ``Options/LoRAMode`` says: see ``LoRAModuleMerge``.
/// - A tensor that is not a residual (PEFT `modules_to_save` heads, non-float tensors) is copied
///   from the first input when every input holds the same values; when they differ, a float tensor
///   is merged with the method as values (from 0) and a non-float one is an error.
///
/// The arithmetic is `Float`; DARE masks come from ``DropMask`` with the merge's seed, so a seed
/// gives byte-identical outputs.
public final class AdapterMerger {
    /// How to merge.
    public struct Options: Sendable {
        /// Where TIES and magnitude-prune take their top-k.
        public enum Scope: String, Sendable, CaseIterable {
            /// Per tensor (PEFT's `merge_utils`).
            case tensor
            /// Over all of one expert's merged residuals.
            case global
        }

        /// How LoRA modules are merged.
        public enum LoRAMode: String, Sendable, CaseIterable {
            /// On the true updates ΔWᵢ = sᵢBᵢAᵢ.
            case exact
            /// PEFT's per-factor combination (same rank required).
            case factors
        }

        public var method: MergeMethod
        /// wᵢ, one per input.
        public var weights: [Double]
        /// Scale of the merged residual.
        public var lambda: Double
        /// DARE's seed.
        public var seed: UInt64
        public var scope: Scope
        public var lora: LoRAMode
        /// The output rank of LoRA modules merged through an SVD.
        public var rank: Int?
        /// Never merge on ternary codes; expand every expert (the reference path).
        public var expand: Bool

        public init(method: MergeMethod, weights: [Double], lambda: Double = 1, seed: UInt64 = 0, scope: Scope = .tensor,
                    lora: LoRAMode = .exact, rank: Int? = nil, expand: Bool = false) {
            self.method = method
            self.weights = weights
            self.lambda = lambda
            self.seed = seed
            self.scope = scope
            self.lora = lora
            self.rank = rank
            self.expand = expand
        }
    }

    /// How one LoRA module was merged.
    public enum LoRAModuleMerge: String, Sendable {
        /// Task arithmetic, concatenated factors of rank Σrᵢ: exactly Σ wᵢsᵢBᵢAᵢ (PEFT's `cat`).
        case concat = "exact-concat"
        /// Task arithmetic, truncated SVD of Σ wᵢsᵢBᵢAᵢ computed from the factors, at the chosen rank.
        case svd = "exact-svd"
        /// A nonlinear method on the dense ΔWᵢ, then truncated SVD at the chosen rank.
        case denseSVD = "dense-svd"
        /// PEFT's per-factor combination.
        case factors
    }

    /// What the inputs are.
    enum Family: Equatable {
        case lora
        case ia3
        /// Residual files and full fine-tunes.
        case residual
    }

    /// One merge step: a tensor, or a LoRA module's pair of factors.
    enum Unit {
        /// A residual, merged with the method; `expected` is the adapter init (nil for residual files).
        case residual(name: String, expected: InitRule?)
        /// Not a residual: copied when identical, else merged as values.
        case kept(name: String)
        /// Boxed: a module is ten times the size of the other cases, and there is a unit per tensor.
        indirect case lora(LoRAModule)
    }

    struct LoRAModule {
        var module: String
        /// The module's name inside the base model (for PEFT's patterns).
        var key: String
        var a: String
        var b: String
        var inFeatures: Int
        var outFeatures: Int
        /// Each input's rank.
        var ranks: [Int]
        var outRank: Int
        var how: LoRAModuleMerge
    }

    /// One tensor of the output.
    struct OutputTensor {
        enum Part { case whole, loraA, loraB }
        var name: String
        var dtype: DType
        var shape: [Int]
        var file: String
        var unit: Int
        var part: Part
    }

    public let sources: [MergeSource]
    public let base: Checkpoint?
    public let options: Options
    let family: Family
    /// The plan; a merge to a container lets it go, with the inputs' tensors, once every tensor is merged.
    var units: [Unit]
    var outputs: [OutputTensor]
    let configs: [MergedAdapterConfig]
    /// wᵢ as `Float`, as the kernels take them (made once, not per tensor).
    let floatWeights: [Float]
    /// Whether the merge has LoRA modules.
    public let mergesLoRA: Bool
    /// Receives one line per decision worth knowing in `--verbose` (which path each tensor took).
    public var log: ((String) -> Void)?

    // Filled while writing.
    var thresholds: [MagnitudeThreshold]?
    var moduleCache: [Int: LoRAFactors] = [:]
    var tensorReports: [TensorReport] = []
    var moduleReports: [ModuleReport] = []

    /// Checks that the inputs can be merged and plans the merge.
    ///
    /// - Precondition: at least one source; one weight per source.
    /// - Throws: ``TaskVectorError`` (`.mismatch`) naming the tensor and the two files when the inputs
    ///   differ in kind, tensor names or shapes; (`.unsupported`) for adapters compeft cannot merge
    ///   (DoRA, AdaLoRA, LoRA biases) or a base given for adapters.
    public init(sources: [MergeSource], base: Checkpoint?, options: Options) throws {
        precondition(!sources.isEmpty, "merging needs at least one input")
        precondition(options.weights.count == sources.count, "\(options.weights.count) weights for \(sources.count) inputs")
        self.sources = sources
        self.base = base
        self.options = options
        floatWeights = options.weights.map(Float.init)
        family = try Self.family(of: sources, base: base)
        configs = try sources.compactMap { s in try s.adapterConfig.map { try MergedAdapterConfig(bytes: $0, path: s.path) } }
        if family == .lora {
            for (s, c) in zip(sources, configs) where c.usesDoRA {
                throw TaskVectorError(.unsupported, file: s.path, "is a DoRA adapter (use_dora); merging DoRA is not supported")
            }
        }
        (units, outputs) = try Self.plan(sources: sources, family: family, options: options)
        mergesLoRA = units.contains { if case .lora = $0 { true } else { false } }
        try Self.checkTensorSets(sources, units: units)
        if let base { try Self.checkBase(base, against: sources[0]) }
    }

    /// The inputs' common kind.
    static func family(of sources: [MergeSource], base: Checkpoint?) throws -> Family {
        func describe(_ s: MergeSource) -> String {
            if let p = s.peftType { return "a PEFT \(p) adapter" }
            return s.kind == .fullFineTune ? "a full fine-tune" : "a residual file"
        }
        let first = sources[0]
        for s in sources.dropFirst() {
            let same = (first.peftType?.uppercased() == s.peftType?.uppercased())
            guard same else {
                throw TaskVectorError(.mismatch, "'\(s.path)' is \(describe(s)) but '\(first.path)' is \(describe(first)); merge inputs of one kind")
            }
        }
        guard let type = first.peftType?.uppercased() else { return .residual }
        if let base {
            throw TaskVectorError(.unsupported, file: base.path, "--base applies to full fine-tunes and residual files, not to \(type) adapters")
        }
        switch type {
        case "LORA": return .lora
        case "IA3": return .ia3
        default:
            throw TaskVectorError(.unsupported, file: first.path, "merging \(type) adapters is not supported (LORA and IA3 are)")
        }
    }

    /// The units and output tensors, from the first input's tensors.
    static func plan(sources: [MergeSource], family: Family, options: Options) throws -> ([Unit], [OutputTensor]) {
        let first = sources[0]
        var units: [Unit] = []
        var outputs: [OutputTensor] = []
        var paired = Set<String>()
        for t in first.tensors where !paired.contains(t.name) {
            let role: TensorRole
            var expected: InitRule?
            if let peftType = first.peftType {
                (role, expected) = try TaskVectorInput.classify(name: t.name, dtype: t.dtype, peftType: peftType, options: .init())
                if t.name.contains("lora_magnitude_vector") {
                    throw TaskVectorError(.unsupported, file: first.path, tensor: t.name, "DoRA magnitude vectors cannot be merged")
                }
            } else {
                role = t.dtype.isFloatingPoint ? .residual : .exact
            }
            if role == .exact {
                outputs.append(OutputTensor(name: t.name, dtype: t.dtype, shape: t.shape, file: t.file, unit: units.count, part: .whole))
                units.append(.kept(name: t.name))
                continue
            }
            if family == .lora {
                let module = try loraModule(t, sources: sources, options: options)
                paired.insert(module.a)
                paired.insert(module.b)
                let a = first.tensor(module.a)!
                let b = first.tensor(module.b)!
                outputs.append(OutputTensor(name: a.name, dtype: a.dtype, shape: [module.outRank] + a.shape.dropFirst(),
                                            file: a.file, unit: units.count, part: .loraA))
                var bShape = b.shape
                bShape[1] = module.outRank
                outputs.append(OutputTensor(name: b.name, dtype: b.dtype, shape: bShape, file: b.file, unit: units.count, part: .loraB))
                units.append(.lora(module))
                continue
            }
            outputs.append(OutputTensor(name: t.name, dtype: t.dtype, shape: t.shape, file: t.file, unit: units.count, part: .whole))
            units.append(.residual(name: t.name, expected: expected))
        }
        return (units, outputs)
    }

    /// The LoRA module a residual tensor belongs to, with both factor names and every input's rank.
    static func loraModule(_ t: MergeSource.Tensor, sources: [MergeSource], options: Options) throws -> LoRAModule {
        let first = sources[0]
        let pairs = [("lora_embedding_A", "lora_embedding_B"), ("lora_A", "lora_B")]
        var found: (a: String, b: String, prefix: String)?
        for (tokenA, tokenB) in pairs {
            for (token, other, isA) in [(tokenA, tokenB, true), (tokenB, tokenA, false)] {
                guard found == nil, let r = t.name.range(of: token, options: .backwards) else { continue }
                let suffix = t.name[r.upperBound...]
                guard suffix.isEmpty || suffix == ".weight" else { continue }
                let prefix = String(t.name[..<r.lowerBound])
                let partner = prefix + other + suffix
                found = isA ? (t.name, partner, prefix) : (partner, t.name, prefix)
            }
        }
        guard let (aName, bName, prefix) = found else {
            throw TaskVectorError(.unsupported, file: first.path, tensor: t.name,
                                  "is a LoRA tensor but not a lora_A/lora_B weight (LoRA biases and other variants cannot be merged)")
        }
        guard let a = first.tensor(aName), let b = first.tensor(bName) else {
            let missing = first.tensor(aName) == nil ? aName : bName
            throw TaskVectorError(.malformed, file: first.path, tensor: t.name, "has no partner '\(missing)'")
        }
        guard a.shape.count >= 2, b.shape.count >= 2, b.shape.dropFirst(2).allSatisfy({ $0 == 1 }), a.shape[0] == b.shape[1] else {
            throw TaskVectorError(.unsupported, file: first.path, tensor: a.name,
                                  "LoRA factors of shapes \(a.shape) and \(b.shape) are not r×… and out×r")
        }
        var ranks: [Int] = []
        for s in sources {
            guard let sa = s.tensor(aName), let sb = s.tensor(bName) else {
                let missing = s.tensor(aName) == nil ? aName : bName
                throw TaskVectorError(.mismatch, tensor: missing, "is in '\(first.path)' but not in '\(s.path)'")
            }
            guard sa.shape.count == a.shape.count, sb.shape.count == b.shape.count, sa.shape.count >= 1, sb.shape.count >= 2,
                sa.shape[0] == sb.shape[1], sa.shape[0] > 0
            else {
                throw TaskVectorError(.mismatch, file: s.path, tensor: aName,
                                      "LoRA factors of shapes \(sa.shape) and \(sb.shape) do not pair (rank must be positive and equal)")
            }
            ranks.append(sa.shape[0])
        }
        let module = prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix
        let how: LoRAModuleMerge
        let outRank: Int
        switch (options.lora, options.method) {
        case (.exact, .taskArithmetic):
            how = options.rank == nil ? .concat : .svd
            outRank = options.rank ?? ranks.reduce(0, +)
        case (.exact, _):
            how = .denseSVD
            outRank = options.rank ?? ranks.max()!
        case (.factors, _):
            how = .factors
            if let i = ranks.firstIndex(where: { $0 != ranks[0] }) {
                throw TaskVectorError(.mismatch, tensor: aName,
                    "has rank \(ranks[0]) in '\(first.path)' but \(ranks[i]) in '\(sources[i].path)'; --lora factors needs one rank (use --lora exact)")
            }
            outRank = ranks[0]
        }
        return LoRAModule(module: module, key: MergedAdapterConfig.moduleKey(module), a: aName, b: bName,
                          inFeatures: a.shape.dropFirst().reduce(1, *), outFeatures: b.shape[0], ranks: ranks,
                          outRank: outRank, how: how)
    }

    /// Every input must hold the first input's tensors, no more, with the same shapes (LoRA factors
    /// may differ in rank) and the same kind of dtype.
    static func checkTensorSets(_ sources: [MergeSource], units: [Unit]) throws {
        let first = sources[0]
        var rankDimension: [String: Int] = [:]
        for case .lora(let m) in units {
            rankDimension[m.a] = 0
            rankDimension[m.b] = 1
        }
        for s in sources.dropFirst() {
            for t in first.tensors {
                guard let u = s.tensor(t.name) else {
                    throw TaskVectorError(.mismatch, tensor: t.name, "is in '\(first.path)' but not in '\(s.path)'")
                }
                var shape = t.shape
                var other = u.shape
                if let d = rankDimension[t.name], shape.count == other.count, shape.count > d {
                    shape[d] = 0
                    other[d] = 0
                }
                guard shape == other else {
                    throw TaskVectorError(.mismatch, tensor: t.name, "has shape \(t.shape) in '\(first.path)' but \(u.shape) in '\(s.path)'")
                }
                guard t.dtype.isFloatingPoint == u.dtype.isFloatingPoint else {
                    throw TaskVectorError(.mismatch, tensor: t.name,
                                          "is \(t.dtype.rawValue) in '\(first.path)' but \(u.dtype.rawValue) in '\(s.path)'")
                }
            }
            if let extra = s.tensors.first(where: { first.tensor($0.name) == nil }) {
                throw TaskVectorError(.mismatch, tensor: extra.name, "is in '\(s.path)' but not in '\(first.path)'")
            }
        }
    }

    /// The base must hold exactly the inputs' tensors, with the same element counts.
    static func checkBase(_ base: Checkpoint, against first: MergeSource) throws {
        for t in first.tensors {
            guard let b = base.entry(t.name) else {
                throw TaskVectorError(.mismatch, file: base.path, tensor: t.name, "is in '\(first.path)' but not in the base")
            }
            guard b.shape == t.shape else {
                throw TaskVectorError(.mismatch, file: base.path, tensor: t.name, "has shape \(b.shape) in the base but \(t.shape) in '\(first.path)'")
            }
            guard b.dtype.isFloatingPoint == t.dtype.isFloatingPoint else {
                throw TaskVectorError(.mismatch, file: base.path, tensor: t.name,
                                      "is \(b.dtype.rawValue) in the base but \(t.dtype.rawValue) in '\(first.path)'")
            }
        }
        if let extra = base.names.first(where: { first.tensor($0) == nil }) {
            throw TaskVectorError(.mismatch, file: base.path, tensor: extra, "is in the base but not in '\(first.path)'")
        }
    }
}
