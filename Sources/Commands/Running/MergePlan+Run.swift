public import AdapterFormat
import Foundation
import Quantize
import TaskVector

extension MergePlan {
    /// What a merge did.
    public struct Outcome {
        public var report: AdapterMerger.Report
        /// The inputs, opened.
        public var sources: [MergeSource]
        /// What the user should know about the result (one line each), printed by the command line on
        /// stderr and listed under `warnings` in every report.
        public var warnings: [String]
    }

    /// Opens the inputs, checks what needs them, merges and writes the output.
    ///
    /// - Parameters:
    ///   - protecting: more paths the output must not overwrite (a config file), besides the inputs and base.
    ///   - log: receives one line per decision worth knowing (`--verbose`).
    ///   - progress: called after each output tensor with (done, total).
    /// - Throws: ``SettingsError`` for settings the inputs do not take (a base for adapters, LoRA settings
    ///   for inputs without LoRA modules); what opening, merging or writing throws.
    public func run(protecting: [String] = [], log: ((String) -> Void)? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Outcome {
        try OutputPath.check(output, isNotAnyOf: inputs + [base].compactMap { $0 } + protecting)
        let baseCheckpoint = try base.map { try Checkpoint(path: $0) }
        let sources = try Self.open(inputs, base: base, log: log)
        if let adapter = sources.first(where: { $0.peftType != nil })?.path, base != nil {
            throw SettingsError { "\($0.name("base")) applies to full fine-tunes and residual files; '\(adapter)' is a PEFT adapter" }
        }
        let merger = try AdapterMerger(sources: sources, base: baseCheckpoint, options: options)
        if !merger.mergesLoRA, let setting = loraSettings.first {
            let kind = sources[0].peftType.map { "\($0) adapters" } ?? "residuals"
            throw SettingsError { "\($0.name(setting)) applies to LoRA adapters; the inputs are \(kind)" }
        }
        if merger.mergesLoRA && options.lora == .factors && options.scope == .global {
            throw SettingsError {
                "\($0.name("scope")) global does not apply to \($0.name("lora")) factors (PEFT trims each factor on its own)"
            }
        }
        merger.log = log
        let report = try merger.write(to: output, as: destination, overwrite: force, progress: progress)
        log?("ternary path: \(report.ternaryCount) tensor(s); dense path: \(report.denseCount) tensor(s)")
        var warnings: [String] = []
        if inputs.count == 1 {
            warnings.append("merged a single input: the output is '\(inputs[0])' through \(method.rawValue) alone (weight and λ applied); give two or more inputs to merge")
        }
        let regauged = sources.filter { $0.loraGauge != nil }
        if merger.mergesLoRA && options.lora == .factors && !regauged.isEmpty {
            warnings.append("--lora factors combines A and B factor by factor, but "
                            + regauged.map { "'\($0.path)' stores its factors in the \($0.loraGauge!) gauge" }.joined(separator: ", ")
                            + ": they reproduce each module's product B·A, not the trained factors, so a factor-wise merge mixes gauges; "
                            + "--lora exact merges the products (or compress with --lora-gauge trained)")
        }
        let differing = report.tensors.filter { $0.how == .mergedValues }
        if !differing.isEmpty {
            warnings.append("\(differing.count) tensor(s) that are not residuals differ between inputs and were merged as values with \(method.rawValue): "
                            + differing.prefix(3).map(\.name).joined(separator: ", ") + (differing.count > 3 ? ", …" : ""))
        }
        if let c = report.compression, let w = DroppedLoRAModule.warning(DroppedLoRAModule.all(in: c.index)) {
            warnings.append(w)
        }
        return Outcome(report: report, sources: sources, warnings: warnings)
    }

    /// The inputs, opened in order; containers side by side.
    ///
    /// A container is read by compeft's own code, which shares nothing between readers, so two or more are
    /// opened in parallel (for a merge of two `.cpeft` of a million tensors each, reading them is a seventh
    /// of the time). Other inputs are opened one after the other: libhdf5, when a test or
    /// `COMPEFT_HDF5_READER=in-process` reads it in this process, is not safe to call from two threads.
    /// When several inputs fail, the error is the first one's, as when they are opened in turn.
    static func open(_ inputs: [String], base: String?, log: ((String) -> Void)?) throws -> [MergeSource] {
        for path in inputs { log?("reading \(path)") }
        let threads = min(inputs.count, ProcessInfo.processInfo.activeProcessorCount)
        guard threads > 1, inputs.allSatisfy(MergeSource.isContainer) else {
            return try inputs.map { try MergeSource.open(path: $0, base: base) }
        }
        let opened = UnsafeSlots<Result<MergeSource, any Error>?>(repeating: nil, count: inputs.count)
        parallelFor(count: inputs.count, threads: threads) { _, i in
            opened[i] = Result { try MergeSource.open(path: inputs[i], base: base) }
        }
        return try inputs.indices.map { try opened[$0]!.get() }
    }
}
