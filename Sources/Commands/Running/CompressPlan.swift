public import AdapterFormat
public import Quantize
public import TaskVector

/// A compression with every setting decided.
public struct CompressPlan: Sendable {
    public var input: String
    public var output: String
    public var options: CompressionOptions
    public var base: String?
    public var load: TaskVectorInput.Options
    public var threads: Int
    public var zstdLevel: Int32
    public var force: Bool

    /// Reads the input, compresses it and writes the container.
    ///
    /// - Parameters:
    ///   - log: receives one line per step worth knowing (`--verbose`).
    ///   - progress: called with (bytes done, bytes in all).
    /// - Throws: what reading, compressing or writing throws; ``SettingsError`` for options that do not
    ///   apply to this kind of expert (a LoRA gauge on (IA)³); nothing is left at the output then.
    public func run(log: ((String) -> Void)? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> AdapterCompressor.Report {
        try OutputPath.check(output, isNotAnyOf: [input] + [base].compactMap { $0 })
        log?("reading \(input)")
        let taskVector = try TaskVectorInput.load(path: input, base: base, options: load)
        log?("\(taskVector.tensors.count) tensors, kind \(taskVector.kind.rawValue)")
        let rule: CompressionRule
        do { rule = try options.rule(for: taskVector.expertKind) } catch { throw SettingsError { _ in error.message } }
        log?("rule: \(rule)")
        let writer = try AtomicFileWriter(path: output, overwrite: force)
        do {
            return try AdapterCompressor.compress(taskVector, options: rule.options, to: writer, zstdLevel: zstdLevel,
                                                  threads: threads, progress: progress)
        } catch {
            writer.abandon()
            throw error
        }
    }
}
