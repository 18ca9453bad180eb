import AdapterFormat
import ArgumentParser
import Commands
import Foundation
import Logging
import Quantize
import TaskVector

struct CompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compress",
        abstract: "Compress an adapter or fine-tune into a .cpeft container.",
        discussion: """
            INPUT is a PEFT adapter folder (adapter_config.json + adapter_model.safetensors or \
            adapter_model.bin), a .safetensors file of residuals (or a sharded checkpoint: its folder or \
            *.safetensors.index.json), an HDF5 file (.h5, .hdf5), a PyTorch torch.save file (.bin, .pt; read \
            without executing code), or with --base a full fine-tune in any of these forms. '-' reads a \
            safetensors file from stdin; '-o -' writes the container to stdout. What compeft reads the input \
            as is printed as note: lines; a LoRA module whose factor keeps no value is warned about.

            Example:
              compeft compress ./my-lora -o my-lora.cpeft --density 10
              compeft compress ./ft-model --base ./base-model -o ft.cpeft --density 5
            """)

    @Argument(help: "Adapter folder, .safetensors, .h5 or .bin file, checkpoint folder or index, or '-'.")
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

    /// The settings the flags give, for ``CompressSettings/plan()``.
    var settings: CompressSettings {
        CompressSettings(input: input, output: output, method: compression.method, scope: compression.scope, scale: compression.scale,
                         loraGauge: compression.loraGauge, density: density,
                         alpha: compression.alpha, base: base, compressAll: compressAll, initOverride: `init`, threads: threads,
                         zstdLevel: Int(zstdLevel), force: force)
    }

    /// The compression the options ask for (every value was checked when it was parsed).
    var options: CompressionOptions { compression.options(density: density) }

    func validate() throws {
        do { _ = try settings.plan() } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        common.setUp()
        let progress = Progress("compressing", quiet: common.quiet, unit: .bytes)
        let report: AdapterCompressor.Report
        do {
            report = try settings.plan().run(log: { Log.logger.debug("\($0)") }, progress: { progress.update($0, $1) })
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        let toStdout = output == "-"
        let emit: (String) -> Void = { toStdout ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(CommandReports.compress(report, input: input, output: output)))
        } else if !common.quiet {
            emit(Reports.compressText(report, input: input, output: output))
        }
        if !common.quiet, let warning = DroppedLoRAModule.warning(DroppedLoRAModule.all(in: report.index)) {
            Terminal.warn(warning)
        }
    }
}
