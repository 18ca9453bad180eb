import AdapterFormat
import ArgumentParser
import Commands
import Quantize
import Foundation
import TaskVector

struct DecompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decompress",
        abstract: "Restore an adapter folder, safetensors file or HDF5 file from a .cpeft container.",
        discussion: """
            The output's name decides what is written, as for merge: NAME.safetensors (or '-', stdout) is one \
            safetensors file with every tensor; NAME.h5 or NAME.hdf5 one HDF5 file; any other name a folder: \
            for a PEFT adapter one that PeftModel.from_pretrained loads (adapter_config.json byte-for-byte, \
            adapter_model.safetensors with the original names, shapes and dtypes, values = init + compressed \
            residual), else the input's files (its shards and index, its config and tokenizer files). A \
            one-file output holds tensors only, and says which carried files it left out. A full fine-tune \
            needs --base to rebuild its weights; without it the residual is written, with a warning.

            Example:
              compeft decompress my-lora.cpeft -o restored-lora
              compeft decompress residual.cpeft -o residual.safetensors
              compeft compress ./lora -o - | compeft decompress - -o restored
            """)

    @Argument(help: "Container path, '-' for stdin, or a registry reference.")
    var input: String

    @Option(name: .shortAndLong, help: "Output: a folder, NAME.safetensors, NAME.h5 / NAME.hdf5, or '-' (safetensors on stdout).")
    var output: String

    @Option(help: "Write float tensors in this dtype instead of their original one.")
    var dtype: DType?

    @Option(help: "The format the output's name implies (.h5/.hdf5: hdf5; else safetensors); refused when it disagrees.")
    var format: OutputFormat?

    @Option(help: "Base model of a full fine-tune, to write fine-tuned weights (base + residual).")
    var base: String?

    @Option(parsing: .unconditional, help: "Tensors decoded at once (default: all cores). The output does not depend on it.")
    var threads: Int?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var remote: RemoteInputOptions

    @OptionGroup var common: CommonOptions

    /// The settings the flags give, for ``DecompressSettings/plan()``.
    var settings: DecompressSettings {
        DecompressSettings(input: input, output: output, dtype: dtype, format: format, base: base, threads: threads, force: force)
    }

    func validate() throws {
        do { _ = try settings.plan() } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        common.setUp()
        let plan = try settings.plan()
        let progress = Progress("decompressing", quiet: common.quiet)
        let outcome: DecompressPlan.Outcome
        do {
            outcome = try plan.run(open: { try ContainerInput.open($0, remote: remote, whole: true) },
                                   progress: { progress.update($0, $1) })
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        let report = outcome.report
        let emit: (String) -> Void = { output == "-" ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(CommandReports.decompress(outcome, plan: plan)))
        } else if !common.quiet {
            emit("wrote \(output)\(report.isFolder ? "/" : "") (\(report.tensorCount) tensors, \(TextFormat.bytes(report.bytesWritten)))")
        }
        if !common.quiet { outcome.warnings.forEach(Terminal.warn) }
    }
}
