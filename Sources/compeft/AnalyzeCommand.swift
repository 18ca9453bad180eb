import ArgumentParser
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
            ‖τ̂‖ < ‖τ‖), and α·σ (α = 1 when --alpha is auto). It takes about as long as one compress per \
            density.

            Example:
              compeft analyze ./my-lora
              compeft analyze ./my-lora --densities 1,5,10,20 --scope tensor --per-tensor
              compeft analyze ./ft-model --base ./base-model --plot sweep.svg
              compeft analyze ./my-lora --json > sweep.json
            """)

    @Argument(help: "Adapter folder, .safetensors file, checkpoint folder, or '-'.")
    var input: String

    @Option(help: "Densities K in percent, comma-separated, each in (0, 100].")
    var densities: String = "1,2,5,10,20,30,50"

    @Option(help: "Scale multiplier α, or 'auto' for the norm-preserving scale ‖τ‖/√n.")
    var alpha: String = "auto"

    @Option(help: "compeft (±α·σ) or stc (±α·mean|kept|).")
    var method: String = "compeft"

    @Option(help: "global: one threshold and scale for all tensors (the paper); tensor: per tensor.")
    var scope: String = "global"

    @Option(help: "Base model (file, folder or index) of a full fine-tune: τ = fine-tuned − base.")
    var base: String?

    @Flag(help: "Also report every figure per residual tensor.")
    var perTensor = false

    @Option(help: "Write an SVG chart of size and error against density to this path ('-' for stdout).")
    var plot: String?

    @Flag(help: "Overwrite the plot if it exists.")
    var force = false

    @OptionGroup var common: CommonOptions

    /// Parses a comma-separated density list: sorted ascending, duplicates dropped.
    static func parseDensities(_ text: String) throws -> [Double] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard items.contains(where: { !$0.isEmpty }) else {
            throw ValidationError("--densities needs at least one density in (0, 100], e.g. --densities 1,5,10")
        }
        var values: [Double] = []
        for item in items {
            let number = item.hasSuffix("%") ? String(item.dropLast()) : item
            guard !item.isEmpty else {
                throw ValidationError("--densities '\(text)' has an empty entry; separate densities with single commas, e.g. 1,5,10")
            }
            guard let k = Double(number), k.isFinite else {
                throw ValidationError("--densities: '\(item)' is not a number; give percentages such as 1,5,10")
            }
            guard k > 0, k <= 100 else {
                throw ValidationError("--densities: \(item) is outside (0, 100]; a density is the percentage of values kept")
            }
            values.append(k)
        }
        return Array(Set(values)).sorted()
    }

    func options() throws -> CompressionOptions {
        guard let m = CompressionOptions.Method(rawValue: method), m != .prune else {
            throw ValidationError("--method must be compeft or stc (analyze measures ternary codes), got '\(method)'")
        }
        guard let s = CompressionOptions.Scope(rawValue: scope) else {
            throw ValidationError("--scope must be global or tensor, got '\(scope)'")
        }
        guard let a = CompressionOptions.Alpha(alpha) else {
            throw ValidationError("--alpha must be a positive number or 'auto', got '\(alpha)'")
        }
        return CompressionOptions(method: m, scope: s, density: 100, alpha: a)
    }

    func validate() throws {
        _ = try options()
        _ = try Self.parseDensities(densities)
        if input == "-" && base != nil { throw ValidationError("--base needs the fine-tune as a file, not stdin") }
        if plot == "" { throw ValidationError("--plot needs a file path, or '-' for stdout") }
    }

    func run() throws {
        common.setUp()
        let options = try options()
        let densities = try Self.parseDensities(densities)
        if let plot { try PathSafety.checkOutput(plot, isNotAnyOf: [input] + (base.map { [$0] } ?? [])) }
        // Open the plot's temporary file first, so an existing plot is refused before the work.
        let plotWriter = try plot.map { try AtomicFileWriter(path: $0, overwrite: force) }
        let taskVector = try TaskVectorInput.load(path: input, base: base)
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
            emit(Terminal.json(Reports.analyze(analysis, perTensor: perTensor)))
        } else if !common.quiet {
            emit(Reports.analyzeText(analysis, perTensor: perTensor))
            if let plot, plot != "-" { emit("\nwrote \(plot)") }
        }
    }
}
