/// How residuals are turned into ternary (or sparse) values.
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

    /// Whether the threshold and scale are shared by all tensors or computed per tensor.
    public enum Scope: String, Sendable, Codable, CaseIterable {
        case global
        case tensor
    }

    /// The α multiplier, or `auto` for the norm-preserving scale.
    public enum Alpha: Sendable, Equatable, Codable, CustomStringConvertible {
        case auto
        case value(Double)

        public init?(_ text: String) {
            if text.lowercased() == "auto" { self = .auto; return }
            guard let v = Double(text), v.isFinite, v > 0 else { return nil }
            self = .value(v)
        }

        public var description: String {
            switch self {
            case .auto: "auto"
            case .value(let v): String(v)
            }
        }
    }

    public var method: Method
    public var scope: Scope
    /// Density K in percent, 0 < K ≤ 100.
    public var density: Double
    public var alpha: Alpha

    public init(method: Method = .compeft, scope: Scope = .global, density: Double = 20, alpha: Alpha = .auto) {
        self.method = method
        self.scope = scope
        self.density = density
        self.alpha = alpha
    }

    /// Checks the ranges: 0 < density ≤ 100, α > 0 and finite.
    public func validate() throws(QuantizeError) {
        guard density.isFinite, density > 0, density <= 100 else {
            throw QuantizeError("density must be a percentage in (0, 100], got \(density)")
        }
        if case .value(let a) = alpha, !(a.isFinite && a > 0) {
            throw QuantizeError("alpha must be a positive number or 'auto', got \(a)")
        }
    }

    /// The number of values the authors' code keeps before ties: `int(d * (K / 100))`, computed as
    /// their Python does (K/100 first, in double precision, truncated).
    public static func keepCount(of d: Int, density: Double) -> Int {
        let fraction = density / 100
        let k = (Double(d) * fraction).rounded(.towardZero)
        return min(d, max(0, Int(k)))
    }
}
