import AdapterFormat
import ArgumentParser
import Foundation
import Logging
import Quantize
import TaskVector

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Compress an adapter or fine-tune into a .cpeft container.",
        discussion: """
            INPUT is a PEFT adapter folder (adapter_config.json + adapter_model.safetensors), a .safetensors \
            file of residuals (or a sharded checkpoint's *.safetensors.index.json), or with --base a full \
            fine-tune. '-' reads a safetensors file from stdin; '-o -' writes the container to stdout.

            Example:
              compeft compress ./my-lora -o my-lora.cpeft --density 10
              compeft compress ./ft-model --base ./base-model -o ft.cpeft --density 5
            """)

    @Argument(help: "Adapter folder, .safetensors file, checkpoint folder, or '-'.")
    var input: String

    @Option(name: .shortAndLong, help: "Output container path, or '-' for stdout.")
    var output: String

    @Option(parsing: .unconditional, help: "Density: \(Density.argumentHelp). Default 20.", transform: Density.argument)
    var density = CompressionOptions.defaultDensity

    @OptionGroup var compression: CompressionArguments

    @Option(help: "Base model (file, folder or index) of a full fine-tune: τ = fine-tuned − base.")
    var base: String?

    @Flag(help: "Also compress adapter tensors that are not residuals (modules_to_save), as the reference code does.")
    var compressAll = false

    @Option(help: "Override the init residuals are measured from, for every float tensor.")
    var `init`: InitRule?

    @Option(parsing: .unconditional, help: "Worker threads (default: all cores). The output does not depend on it.")
    var threads: Int?

    @Option(parsing: .unconditional, help: "zstd level for payloads (1–22).")
    var zstdLevel: Int32 = 19

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var common: CommonOptions

    /// The compression the options ask for (every value was checked when it was parsed).
    var options: CompressionOptions { compression.options(density: density) }

    func validate() throws {
        guard (1...22).contains(zstdLevel) else { throw ValidationError("--zstd-level must be 1…22, got \(zstdLevel)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if input == "-" && base != nil { throw ValidationError("--base needs the fine-tune as a file, not stdin") }
    }

    func run() throws {
        common.setUp()
        try PathSafety.checkOutput(output, isNotAnyOf: [input] + (base.map { [$0] } ?? []))
        Log.logger.debug("reading \(input)")
        let taskVector = try TaskVectorInput.load(
            path: input, base: base,
            options: .init(compressAll: compressAll, initOverride: `init`))
        Log.logger.debug("\(taskVector.tensors.count) tensors, kind \(taskVector.kind.rawValue)")
        let rule = try compression.rule(density: density, for: taskVector)
        Log.logger.debug("rule: \(rule)")
        let writer = try AtomicFileWriter(path: output, overwrite: force)
        let progress = Progress("compressing", quiet: common.quiet, unit: .bytes)
        let report: AdapterCompressor.Report
        do {
            report = try AdapterCompressor.compress(taskVector, options: rule.options, to: writer, zstdLevel: zstdLevel,
                                                    threads: threads ?? defaultThreadCount,
                                                    progress: { progress.update($0, $1) })
        } catch {
            writer.abandon()
            progress.finish()
            throw error
        }
        progress.finish()
        let toStdout = output == "-"
        let emit: (String) -> Void = { toStdout ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(Reports.compress(report, input: input, output: output)))
        } else if !common.quiet {
            emit(Reports.compressText(report, input: input, output: output))
        }
    }
}
