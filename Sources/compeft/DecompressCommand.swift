import AdapterFormat
import ArgumentParser
import Quantize
import Foundation
import TaskVector

struct DecompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decompress",
        abstract: "Restore an adapter folder or safetensors file from a .cpeft container.",
        discussion: """
            A PEFT adapter comes back as a folder that PeftModel.from_pretrained loads: adapter_config.json \
            byte-for-byte, adapter_model.safetensors with the original names, shapes and dtypes, values = \
            init + compressed residual. A residual file comes back as one .safetensors ('-o -' writes it to \
            stdout). A full fine-tune needs --base to rebuild its weights; without it the residual is written.

            Example:
              compeft decompress my-lora.cpeft -o restored-lora
              compeft compress ./lora -o - | compeft decompress - -o restored
            """)

    @Argument(help: "Container path, '-' for stdin, or a registry reference.")
    var input: String

    @Option(name: .shortAndLong, help: "Output folder or .safetensors file ('-' for stdout when it is one file).")
    var output: String

    @Option(help: "Write float tensors in this dtype instead of their original one.")
    var dtype: DType?

    @Option(help: "Output format: safetensors (a PEFT folder for adapters) or hdf5 (one .h5 file).")
    var format = OutputFormat.safetensors

    @Option(help: "Base model of a full fine-tune, to write fine-tuned weights (base + residual).")
    var base: String?

    @Option(parsing: .unconditional, help: "Tensors decoded at once (default: all cores). The output does not depend on it.")
    var threads: Int?

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var remote: RemoteInputOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if format == .hdf5 && output == "-" { throw ValidationError("--format hdf5 needs a file path, not '-'") }
    }

    func run() throws {
        common.setUp()
        try PathSafety.checkOutput(output, isNotAnyOf: [input] + (base.map { [$0] } ?? []))
        let reader = try ContainerInput.open(input, remote: remote, whole: true)
        if output == "-" && format == .safetensors && AdapterDecompressor.writesFolder(reader.index) {
            throw CLIError(status: .usage, message: "\(input): this container decompresses to a folder (\(reader.index.inputKind)); give a folder path to -o, not '-'")
        }
        let baseCheckpoint = try base.map { try Checkpoint(path: $0) }
        let progress = Progress("decompressing", quiet: common.quiet)
        let report = format == .hdf5
            ? try AdapterDecompressor.decompressToHDF5(reader, to: output, dtype: dtype, base: baseCheckpoint, overwrite: force)
            : try AdapterDecompressor.decompress(reader, to: output, dtype: dtype, base: baseCheckpoint,
                                                 overwrite: force, threads: threads ?? defaultThreadCount,
                                                 progress: { progress.update($0, $1) })
        progress.finish()
        if report.residualOnly && !common.quiet {
            Terminal.err("compeft: warning: \(input) holds a full fine-tune; without --base the residual τ was written, not the weights")
        }
        let toStdout = output == "-"
        let emit: (String) -> Void = { toStdout ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json([
                "input": input, "output": output, "folder": report.isFolder, "files": report.files,
                "tensors": report.tensorCount, "bytes_written": report.bytesWritten, "residual_only": report.residualOnly,
            ] as [String: Any]))
        } else if !common.quiet {
            emit("wrote \(output)\(report.isFolder ? "/" : "") (\(report.tensorCount) tensors, \(TextFormat.bytes(report.bytesWritten)))")
        }
    }
}
