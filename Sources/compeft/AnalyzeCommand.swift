import AdapterFormat
import ArgumentParser
import Commands
import Foundation
import Quantize
import TaskVector

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Show what each density costs and loses: real compressed sizes and reconstruction error.",
        discussion: """
            For each density K, analyze compresses INPUT exactly as 'compress' would (into a temporary \
            file, deleted afterwards) and reports the kept fraction, the container and residual payload \
            sizes (bits per parameter, ratio to the input and to an f16 copy of the residuals), the share \
            of ‖τ‖² the kept values hold, and the relative L2 error and cosine of the ternary τ̂ the \
            container decodes to. It also sets three scales side by side on the same kept values: the \
            norm-preserving ‖τ‖/√n (what --alpha auto uses), the L2-optimal mean|kept| (least error, but \
            ‖τ̂‖ < ‖τ‖), and α·σ (α = 1 when --alpha is auto). For a LoRA adapter it also reports the \
            error and cosine of each module's update ΔW = s·B·A as the decoded factors give it (what the \
            model sees; in total, and per module with --per-tensor) beside the factors' own error. \
            --target-error E names the smallest density whose error (of the updates, for LoRA) is at most E. \
            It takes about as long as one compress per density.

            Example:
              compeft analyze ./my-lora
              compeft analyze ./my-lora --densities 1,5,10,20 --scope tensor --per-tensor
              compeft analyze ./ft-model --base ./base-model --plot sweep.svg
              compeft analyze ./my-lora --json > sweep.json
              compeft analyze ./my-lora --target-error 0.5
            """)

    @Argument(help: "Adapter folder, .safetensors file, checkpoint folder, or '-'.")
    var input: String

    @Option(parsing: .unconditional, help: "Densities, comma-separated, each \(Density.argumentHelp). Default 1,2,5,10,20,30,50.",
            transform: Density.list)
    var densities = AnalyzeCommand.defaultDensities

    @OptionGroup var compression: CompressionArguments

    @Option(help: "Base model (file, folder or index) of a full fine-tune: τ = fine-tuned − base.")
    var base: String?

    @Flag(help: "Also report every figure per residual tensor (and per LoRA module).")
    var perTensor = false

    @Option(help: "Name the smallest density whose relative error is at most E (for LoRA: of the updates ΔW = s·B·A).")
    var targetError: Double?

    @Option(help: "Write an SVG chart of size and error against density to NAME.svg ('-' for stdout).")
    var plot: String?

    @Flag(help: "Overwrite the plot if it exists.")
    var force = false

    @OptionGroup var common: CommonOptions

    static let defaultDensities = try! Density.list("1,2,5,10,20,30,50")

    /// The compression each density is measured with (its density replaced by each of ``densities``).
    var options: CompressionOptions { compression.options(density: .full) }

    func validate() throws {
        if compression.method == .prune { throw ValidationError("--method must be compeft or stc: analyze measures ternary codes, and prune keeps the values") }
        if input == "-" && base != nil { throw ValidationError("--base needs the fine-tune as a file, not stdin") }
        if let targetError, !(targetError > 0 && targetError.isFinite) {
            throw ValidationError("--target-error must be a relative error above 0, got \(targetError)")
        }
        if plot == "" { throw ValidationError("--plot needs a file path, or '-' for stdout") }
        if let plot, plot != "-", !plot.lowercased().hasSuffix(".svg") {
            throw ValidationError("--plot writes an SVG chart; name the file NAME.svg (or '-' for stdout), got '\(plot)'")
        }
    }

    func run() throws {
        common.setUp()
        if let plot { try OutputPath.check(plot, isNotAnyOf: [input] + (base.map { [$0] } ?? [])) }
        // Open the plot's temporary file first, so an existing plot is refused before the work.
        let plotWriter = try plot.map { try AtomicFileWriter(path: $0, overwrite: force) }
        let taskVector = try TaskVectorInput.load(path: input, base: base)
        _ = try compression.rule(density: .full, for: taskVector)
        let progress = Progress("analyzing", quiet: common.quiet)
        let analysis: DensityAnalysis
        do {
            analysis = try DensityAnalysis.run(taskVector, input: input, base: base, options: options, densities: densities,
                                               progress: { progress.update($0, $1) })
        } catch {
            plotWriter?.abandon()
            progress.finish()
            throw error
        }
        let target: DensityAnalysis.TargetSearch?
        do {
            target = try targetError.map { try analysis.search(taskVector, target: $0) }
        } catch {
            plotWriter?.abandon()
            throw error
        }
        progress.finish()
        if let plotWriter {
            do {
                try plotWriter.write(Array(DensityPlot.render(analysis).utf8))
                try plotWriter.commit()
            } catch {
                plotWriter.abandon()
                throw error
            }
        }
        let emit: (String) -> Void = { plot == "-" ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(Reports.analyze(analysis, perTensor: perTensor, target: target)))
        } else if !common.quiet {
            emit(Reports.analyzeText(analysis, perTensor: perTensor, target: target))
            if let plot, plot != "-" { emit("\nwrote \(plot)") }
        }
    }
}
