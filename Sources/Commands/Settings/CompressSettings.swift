public import Quantize
public import TaskVector

/// The settings of `compress`, as the flags and the C ABI's options give them (`nil`: not given).
public struct CompressSettings: Sendable {
    public var input: String
    public var output: String
    public var method: CompressionOptions.Method?
    public var scope: CompressionOptions.Scope?
    /// Which values share a scale, and the gauge LoRA factors are stored in (`nil`: the expert's default,
    /// decided once the input is read: ``CompressionOptions/rule(for:)``).
    public var scale: CompressionOptions.Scale?
    public var loraGauge: CompressionOptions.LoRAGauge?
    public var density: Density?
    public var alpha: CompressionOptions.Alpha?
    public var base: String?
    public var compressAll: Bool
    public var initOverride: InitRule?
    public var threads: Int?
    public var zstdLevel: Int?
    public var force: Bool

    public init(input: String, output: String, method: CompressionOptions.Method? = nil, scope: CompressionOptions.Scope? = nil,
                scale: CompressionOptions.Scale? = nil, loraGauge: CompressionOptions.LoRAGauge? = nil, density: Density? = nil, alpha: CompressionOptions.Alpha? = nil, base: String? = nil, compressAll: Bool = false,
                initOverride: InitRule? = nil, threads: Int? = nil, zstdLevel: Int? = nil, force: Bool = false) {
        self.input = input
        self.output = output
        self.method = method
        self.scope = scope
        self.scale = scale
        self.loraGauge = loraGauge
        self.density = density
        self.alpha = alpha
        self.base = base
        self.compressAll = compressAll
        self.initOverride = initOverride
        self.threads = threads
        self.zstdLevel = zstdLevel
        self.force = force
    }

    /// The plan: defaults for what the settings leave out (compeft, density 20 %, α auto, zstd level 19,
    /// every core; scope, scale and LoRA gauge by the kind of expert, once it is read), and the checks that
    /// need no file.
    ///
    /// - Throws: ``SettingsError`` for a zstd level outside 1…22, threads below 1, a base with the
    ///   fine-tune on standard input, or an α for `prune` (which keeps the values and has no scale).
    public func plan() throws(SettingsError) -> CompressPlan {
        let level = zstdLevel ?? 19
        guard (1...22).contains(level) else { throw SettingsError { "\($0.name("zstd_level")) must be 1…22, got \(level)" } }
        if let threads, threads < 1 { throw SettingsError { "\($0.name("threads")) must be at least 1, got \(threads)" } }
        if input == "-" && base != nil { throw SettingsError { "\($0.name("base")) needs the fine-tune as a file, not stdin" } }
        let method = method ?? .compeft
        if method == .prune, case .value = alpha {
            throw SettingsError { "\($0.name("alpha")) does not apply to prune, which keeps the values it keeps (no scale)" }
        }
        let options = CompressionOptions(method: method, scope: scope, scale: scale, loraGauge: loraGauge,
                                         density: density ?? CompressionOptions.defaultDensity, alpha: alpha ?? .auto)
        // Options that cannot go together whatever the input (the input's kind is checked once it is read).
        do { _ = try options.rule(for: .lora) } catch { throw SettingsError { _ in error.message } }
        return CompressPlan(input: input, output: output, options: options, base: base,
                            load: TaskVectorInput.Options(compressAll: compressAll, initOverride: initOverride),
                            threads: threads ?? defaultThreadCount, zstdLevel: Int32(level), force: force)
    }
}
