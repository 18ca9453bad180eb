import AdapterFormat
import ArgumentParser
import Foundation
import Logging
import Quantize
import TaskVector

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge adapters or fine-tunes into one: task arithmetic, TIES, DARE or magnitude prune.",
        discussion: """
            INPUTs are PEFT adapter folders, .safetensors files (or sharded checkpoints), .cpeft containers, or a \
            mix, all of one kind (LoRA, (IA)³, or residuals) with the same tensors. For full fine-tunes pass \
            --base: each residual is input − base and the output holds base + merged residual (without --base \
            the merged residual is written). Methods follow PEFT's merge_utils: the methods combine residuals \
            τᵢ = input − init, and the output is init + λ·merge(τ).

            -o DIR writes a PEFT adapter folder for adapters (adapter_config.json from the first input, with r, \
            lora_alpha, target_modules and use_rslora: false set for the merged factors), else the first \
            input's files; -o FILE.safetensors writes every tensor to one file; -o FILE.cpeft compresses the \
            merge like `compeft compress` with --out-density and --out-alpha.

            LoRA (--lora exact, the default) merges the true updates ΔWᵢ = sᵢ·Bᵢ·Aᵢ per module: task-arithmetic \
            writes the exact concatenated LoRA of rank Σrᵢ, or with --rank R its truncated SVD; ties, dare-* and \
            magnitude-prune merge the dense ΔWᵢ with the method, then factor the result by truncated SVD at \
            --rank R (default: the largest input rank), and report the discarded energy per module. --lora \
            factors is PEFT's per-factor combination (inputs of one rank). Tensors that are not residuals \
            (modules_to_save heads) are copied from the first input when identical in every input, else merged \
            with the method as values.

            When every input is a .cpeft whose tensor is a ternary code, task-arithmetic, and ties or \
            magnitude-prune whose top-k keeps each expert's whole support, run on the codes' bits without \
            expanding them (--verbose says which path each tensor took); the result equals the expanded merge.

            Examples:
              compeft merge math-lora code-lora -o merged --method ties --weights 1,0.5
              compeft merge a.cpeft b.cpeft -o merged.cpeft --method ties --out-density 10
              compeft merge ft1 ft2 --base base -o merged --method dare-ties --seed 7
              compeft merge --config sets/set1.json --force
            """)

    @Argument(help: "Inputs: PEFT adapter folders, .safetensors files or checkpoints, .cpeft containers.")
    var inputs: [String] = []

    @Option(name: .shortAndLong, help: "Output: a folder, a .safetensors file, a .cpeft container, or '-' (safetensors on stdout).")
    var output: String?

    @Option(help: "A JSON file with the same settings (keys: inputs, output, method, density, weights, lambda, base, election, seed, scope, lora, rank, out_density, out_alpha, force); flags override it.")
    var config: String?

    @Option(help: "task-arithmetic (default), ties, dare-linear, dare-ties or magnitude-prune.")
    var method: String?

    @Option(help: "Density K: the percentage each expert keeps, 0 < K ≤ 100, for ties, dare-* and magnitude-prune (default 20).")
    var density: Double?

    @Option(help: "Comma-separated weights, one per input (default 1 each).")
    var weights: String?

    @Option(name: .customLong("lambda"), help: "Scale of the merged residual (default 1).")
    var lambda: Double?

    @Option(help: "Base model of full fine-tunes (file, folder or index): residuals are input − base, the output base + merge.")
    var base: String?

    @Option(help: "Sign election for ties and dare-ties: total (default) or frequency.")
    var election: String?

    @Option(help: "Seed of DARE's drop masks (default 0); the same seed gives the same bytes.")
    var seed: UInt64?

    @Option(help: "Top-k of ties and magnitude-prune: per tensor (default, as PEFT) or global (per expert).")
    var scope: String?

    @Option(help: "LoRA merge: exact (default; merges ΔW = s·B·A) or factors (PEFT's per-factor combination).")
    var lora: String?

    @Option(help: "Rank of LoRA modules factored by SVD (task-arithmetic: truncates the exact merge; others: default the largest input rank).")
    var rank: Int?

    @Option(help: "For a .cpeft output: density K of the compression (default 20).")
    var outDensity: Double?

    @Option(help: "For a .cpeft output: α of the compression, or auto (default).")
    var outAlpha: String?

    @Flag(help: "Expand compressed experts to floats even where the ternary path applies (a reference for checks).")
    var expand = false

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var common: CommonOptions

    /// Everything a merge needs, from the config file and the flags.
    struct Settings {
        var inputs: [String]
        var output: String
        var base: String?
        var options: AdapterMerger.Options
        var destination: AdapterMerger.Destination
        var methodName: String
        var density: Double
        var election: SignElection?
        var force: Bool
    }

    static let methodNames = ["task-arithmetic", "ties", "dare-linear", "dare-ties", "magnitude-prune"]

    static func parseWeights(_ text: String) -> [Double]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        return values.count == parts.count && values.allSatisfy(\.isFinite) && !values.isEmpty ? values : nil
    }

    func validate() throws {
        if let weights, Self.parseWeights(weights) == nil {
            throw ValidationError("--weights must be comma-separated numbers, like 1,1,0.5; got '\(weights)'")
        }
        if config == nil {
            do { _ = try settings(MergeConfig()) } catch let e as CLIError { throw ValidationError(e.message) }
        }
    }

    /// Combines the config file (if any) and the flags, which win.
    func settings(_ file: MergeConfig) throws -> Settings {
        func usage(_ message: String) -> CLIError { CLIError(status: .usage, message: message) }
        let inputs = self.inputs.isEmpty ? (file.inputs ?? []) : self.inputs
        guard !inputs.isEmpty else { throw usage("give at least one INPUT (or \"inputs\" in --config)") }
        guard let output = output ?? file.output else { throw usage("give an output with -o (or \"output\" in --config)") }
        let methodName = (method ?? file.method ?? "task-arithmetic").lowercased().replacingOccurrences(of: "_", with: "-")
        guard Self.methodNames.contains(methodName) else {
            throw usage("--method must be one of \(Self.methodNames.joined(separator: ", ")); got '\(method ?? file.method ?? "")'")
        }
        let density = density ?? file.density ?? 20
        guard density.isFinite, density > 0, density <= 100 else {
            throw usage("--density must be a percentage in (0, 100], got \(density)")
        }
        let electionName = election ?? file.election ?? "total"
        guard let election = SignElection(rawValue: electionName.lowercased()) else {
            throw usage("--election must be total or frequency, got '\(electionName)'")
        }
        let weights = self.weights.flatMap(Self.parseWeights) ?? file.weights ?? Array(repeating: 1, count: inputs.count)
        guard weights.count == inputs.count else {
            throw usage("--weights gives \(weights.count) weight(s) for \(inputs.count) input(s)")
        }
        guard weights.allSatisfy(\.isFinite) else { throw usage("--weights must be finite numbers") }
        let lambda = lambda ?? file.lambda ?? 1
        guard lambda.isFinite else { throw usage("--lambda must be a finite number") }
        let scopeName = scope ?? file.scope ?? "tensor"
        guard let scope = AdapterMerger.Options.Scope(rawValue: scopeName) else {
            throw usage("--scope must be tensor or global, got '\(scopeName)'")
        }
        let loraName = lora ?? file.lora ?? "exact"
        guard let loraMode = AdapterMerger.Options.LoRAMode(rawValue: loraName) else {
            throw usage("--lora must be exact or factors, got '\(loraName)'")
        }
        let rank = rank ?? file.rank
        if let rank, rank <= 0 { throw usage("--rank must be positive, got \(rank)") }
        if rank != nil && loraMode == .factors { throw usage("--rank applies to --lora exact; --lora factors keeps the inputs' rank") }
        let fraction = density / 100
        let method: MergeMethod = switch methodName {
        case "ties": .ties(density: fraction, election: election)
        case "dare-linear": .dareLinear(density: fraction)
        case "dare-ties": .dareTies(density: fraction, election: election)
        case "magnitude-prune": .magnitudePrune(density: fraction)
        default: .taskArithmetic
        }
        let outDensity = outDensity ?? file.outDensity
        let outAlpha = outAlpha ?? file.outAlpha
        let destination: AdapterMerger.Destination
        if output.lowercased().hasSuffix(".cpeft") {
            guard let alpha = CompressionOptions.Alpha(outAlpha ?? "auto") else {
                throw usage("--out-alpha must be a positive number or 'auto', got '\(outAlpha ?? "")'")
            }
            let options = CompressionOptions(density: outDensity ?? 20, alpha: alpha)
            do { try options.validate() } catch { throw usage("--out-\(error.message)") }
            destination = .container(options, zstdLevel: 19)
        } else {
            if outDensity != nil || outAlpha != nil {
                throw usage("--out-density and --out-alpha apply to a .cpeft output; '\(output)' is not one")
            }
            destination = output == "-" || output.lowercased().hasSuffix(".safetensors") ? .file : .folder
        }
        return Settings(
            inputs: inputs, output: output, base: base ?? file.base,
            options: AdapterMerger.Options(method: method, weights: weights, lambda: lambda, seed: seed ?? file.seed ?? 0,
                                           scope: scope, lora: loraMode, rank: rank, expand: expand),
            destination: destination, methodName: methodName, density: density,
            election: method.election, force: force || (file.force ?? false))
    }

    func run() throws {
        common.setUp()
        let s = try settings(config.map(MergeConfig.init(path:)) ?? MergeConfig())
        try PathSafety.checkOutput(s.output, isNotAnyOf: s.inputs + [s.base, config].compactMap { $0 })
        let base = try s.base.map { try Checkpoint(path: $0) }
        let sources = try s.inputs.map { path in
            Log.logger.debug("reading \(path)")
            return try MergeSource.open(path: path, base: s.base)
        }
        if let a = sources.first(where: { $0.peftType != nil }), s.base != nil {
            throw CLIError(status: .usage, message: "--base applies to full fine-tunes and residual files; '\(a.path)' is a PEFT adapter")
        }
        let merger = try AdapterMerger(sources: sources, base: base, options: s.options)
        if merger.mergesLoRA && s.options.lora == .factors && s.options.scope == .global {
            throw CLIError(status: .usage, message: "--scope global does not apply to --lora factors (PEFT trims each factor on its own)")
        }
        merger.log = { Log.logger.debug("\($0)") }
        let progress = Progress("merging", quiet: common.quiet)
        let report: AdapterMerger.Report
        do {
            report = try merger.write(to: s.output, as: s.destination, overwrite: s.force, progress: { progress.update($0, $1) })
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        Log.logger.debug("ternary path: \(report.ternaryCount) tensor(s); dense path: \(report.denseCount) tensor(s)")
        let differing = report.tensors.filter { $0.how == .mergedValues }
        if !differing.isEmpty && !common.quiet {
            Terminal.err("compeft: warning: \(differing.count) tensor(s) that are not residuals differ between inputs and were merged as values with \(s.methodName): "
                         + differing.prefix(3).map(\.name).joined(separator: ", ") + (differing.count > 3 ? ", …" : ""))
        }
        let emit: (String) -> Void = { s.output == "-" ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(Reports.merge(report, settings: s, sources: sources)))
        } else if !common.quiet {
            emit(Reports.mergeText(report, settings: s, sources: sources))
        }
    }
}
