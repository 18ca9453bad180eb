import TaskVector

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

    public var options: CompressionOptions
    /// The global group (scope global), or nil for scope tensor.
    public var global: Group?
    /// Per-tensor groups for scope tensor, by name.
    public var perTensor: [String: Group]
    /// One entry per input tensor, in input (name) order.
    public var tensors: [TensorPlan]
    /// Passes over this input hand its mapped pages back as they go (it may not fit in memory); false
    /// when it fits several times over (``ResidualChunks/keepsMapped(_:)``). Coding follows it too.
    public var releasesPages = true
}
