public import TaskVector

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
    public var scope: Scope
    /// The share of each selection group's values kept (default 20 %).
    public var density: Density
    public var alpha: Alpha

    /// 20 %, the default density of `compress`.
    public static let defaultDensity = Density.percent(20)

    public init(method: Method = .compeft, scope: Scope = .global, density: Density = defaultDensity,
                alpha: Alpha = .auto) {
        self.method = method
        self.scope = scope
        self.density = density
        self.alpha = alpha
    }

    /// Checks α: positive and finite (a ``Density`` is valid by construction).
    public func validate() throws(QuantizeError) {
        if case .value(let a) = alpha, !(a.isFinite && a > 0) {
            throw QuantizeError("alpha must be a positive number or 'auto', got \(a)")
        }
    }

}
