public import Quantize
public import TaskVector

/// What `compeft analyze` measures: for each density, the size of the container the real compressor
/// writes (counted, never stored) and the figures of its reconstruction.
public struct DensityAnalysis: Sendable {
    /// Sizes of one density's container, as `compress` writes it.
    public struct Sizes: Sendable {
        /// The whole container: preamble, every payload, the index and the trailer.
        public var containerBytes: Int
        /// All tensor payloads (residuals and tensors stored exactly).
        public var payloadBytes: Int
        /// Payloads of the residual tensors.
        public var residualPayloadBytes: Int
        /// Payload bytes by tensor name.
        public var tensorPayloadBytes: [String: Int]
    }

    /// The figures at one density.
    public struct Density: Sendable {
        public var point: DensitySweep.Point
        public var sizes: Sizes
        /// For a LoRA adapter, the error of each module's update ΔW = s·B·A as the container decodes it.
        public var lora: LoRAUpdateError?
    }

    /// The input as the user named it, for reports.
    public var input: String
    /// The base model of a full fine-tune.
    public var base: String?
    public var kind: TaskVectorInput.Kind
    public var peftType: String?
    /// Bytes of the input's own files (not the base).
    public var inputBytes: Int
    /// The rule measured: the options asked for, resolved for the input's kind of expert.
    public var rule: CompressionRule
    /// Residual tensors and their values, d.
    public var residualTensors: Int
    public var residualValues: Int
    public var densities: [Density]

    /// Bytes of an f16 copy of the residuals (2 per value).
    public var f16Bytes: Int { 2 * residualValues }

    /// Compresses `taskVector` once per density into a ``CountingByteSink`` (the bytes are counted,
    /// never kept) and measures every plan's reconstruction in one streaming pass.
    ///
    /// - Parameters:
    ///   - input: the input's name, for reports.
    ///   - base: the base's name, for reports.
    ///   - options: the compression options; their density is replaced by each of `densities`.
    ///   - densities: the densities to measure.
    ///   - zstdLevel: the level `compress` would use.
    ///   - progress: called with (steps done, steps) after each density and after the pass.
    /// - Throws: what ``AdapterCompressor/compress(_:options:to:zstdLevel:threads:progress:)`` throws.
    public static func run(_ taskVector: TaskVectorInput, input: String, base: String?, options: CompressionOptions,
                           densities: [TaskVector.Density], zstdLevel: Int32 = 19,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> DensityAnalysis {
        let rule = try options.rule(for: taskVector.expertKind)
        var reports: [(CompressionPlan, Sizes, LoRAUpdateError?)] = []
        for (i, density) in densities.enumerated() {
            reports.append(try compress(taskVector, input: input, options: options, density: density, zstdLevel: zstdLevel))
            progress(i + 1, densities.count + 1)
        }
        let points = DensitySweep.measure(taskVector.tensors, plans: reports.map(\.0))
        progress(densities.count + 1, densities.count + 1)
        let residuals = taskVector.tensors.filter { $0.role == .residual }
        return DensityAnalysis(
            input: input, base: base, kind: taskVector.kind, peftType: taskVector.adapterConfig?.peftType,
            inputBytes: taskVector.inputBytes, rule: rule, residualTensors: residuals.count,
            residualValues: residuals.reduce(0) { $0 + $1.count },
            densities: zip(points, reports).map { Density(point: $0, sizes: $1.1, lora: $1.2) })
    }

    /// Compresses `taskVector` at one density as `compress` would: the plan, the container's sizes, and
    /// for LoRA factors the error of the updates the container decodes to (the container is then kept in
    /// memory to be read back; otherwise its bytes are only counted).
    static func compress(_ taskVector: TaskVectorInput, input: String, options: CompressionOptions, density: TaskVector.Density,
                         zstdLevel: Int32) throws -> (CompressionPlan, Sizes, LoRAUpdateError?) {
        var o = options
        o.density = density
        let residualNames = Set(taskVector.tensors.filter { $0.role == .residual }.map(\.name))
        let hasLoRA = !LoRAUpdateError.modules(of: taskVector.tensors).isEmpty
        let memory = MemoryByteSink(name: input)
        let sink: any ByteSink = hasLoRA ? memory : CountingByteSink(name: input)
        let report = try AdapterCompressor.compress(taskVector, options: o, to: sink, zstdLevel: zstdLevel)
        var byName: [String: Int] = [:]
        for t in report.index.tensors { byName[t.name] = t.length }
        let sizes = Sizes(
            containerBytes: Int(report.outputBytes),
            payloadBytes: report.index.tensors.reduce(0) { $0 + $1.length },
            residualPayloadBytes: report.index.tensors.filter { residualNames.contains($0.name) }.reduce(0) { $0 + $1.length },
            tensorPayloadBytes: byName)
        let lora = hasLoRA
            ? try LoRAUpdateError.measure(taskVector.tensors, config: taskVector.adapterConfig,
                                          reader: ContainerReader(name: input, contents: memory.bytes))
            : nil
        return (report.plan, sizes, lora)
    }
}

extension DensityAnalysis.Density {
    /// Bits per residual value of the residual payloads.
    public var bitsPerParameter: Double? {
        point.total.statistics.count > 0 ? 8 * Double(sizes.residualPayloadBytes) / Double(point.total.statistics.count) : nil
    }

    /// Bits per residual value of the whole container.
    public var containerBitsPerParameter: Double? {
        point.total.statistics.count > 0 ? 8 * Double(sizes.containerBytes) / Double(point.total.statistics.count) : nil
    }

    /// Input file bytes over container bytes.
    public func ratioVsInput(_ inputBytes: Int) -> Double? {
        sizes.containerBytes > 0 ? Double(inputBytes) / Double(sizes.containerBytes) : nil
    }

    /// An f16 copy of the residuals (2 bytes per value) over the residual payloads.
    public var ratioVsF16: Double? {
        sizes.residualPayloadBytes > 0 ? 2 * Double(point.total.statistics.count) / Double(sizes.residualPayloadBytes) : nil
    }
}
