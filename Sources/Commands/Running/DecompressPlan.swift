public import AdapterFormat
public import TaskVector

/// A decompression with every setting decided.
public struct DecompressPlan: Sendable {
    public var input: String
    public var output: String
    public var target: OutputTarget
    public var dtype: DType?
    public var base: String?
    public var threads: Int
    public var force: Bool

    /// What a decompression did.
    public struct Outcome: Sendable {
        public var report: AdapterDecompressor.Report
        /// What the user should know about the output (see ``MergePlan/Outcome/warnings``).
        public var warnings: [String]
    }

    /// Opens the container and the base and writes the output.
    ///
    /// - Parameters:
    ///   - open: opens the container ``input`` names, after the output was checked not to be an input;
    ///     by default the file at that path (the command line also resolves registry references).
    ///   - progress: called after each tensor with (done, total).
    /// - Throws: what opening, decoding or writing throws; nothing is left at the output then.
    public func run(open: ((String) throws -> ContainerReader)? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Outcome {
        try OutputPath.check(output, isNotAnyOf: [input] + [base].compactMap { $0 })
        let reader = try open?(input) ?? ContainerReader(path: input)
        let checkpoint = try base.map { try Checkpoint(path: $0) }
        let report = target == .hdf5
            ? try AdapterDecompressor.decompressToHDF5(reader, to: output, dtype: dtype, base: checkpoint, overwrite: force)
            : try AdapterDecompressor.decompress(reader, to: output, layout: target == .folder ? .folder : .file, dtype: dtype,
                                                 base: checkpoint, overwrite: force, threads: threads, progress: progress)
        var warnings: [String] = []
        if report.residualOnly {
            warnings.append("\(input) holds a full fine-tune; without its base model the residual τ was written, not the weights")
        }
        if !report.filesLeftOut.isEmpty {
            warnings.append("\(report.filesLeftOut.joined(separator: ", ")) not written: a one-file output holds tensors only; "
                            + "name the output as a folder (no .safetensors, .h5 or .hdf5) to write \(report.filesLeftOut.count == 1 ? "it" : "them") too")
        }
        return Outcome(report: report, warnings: warnings)
    }
}
