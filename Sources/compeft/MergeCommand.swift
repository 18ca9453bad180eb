import AdapterFormat
import ArgumentParser
import Commands
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

            The output's name decides what is written, as for decompress: -o NAME.cpeft compresses the merge \
            like `compeft compress` with --out-density and --out-alpha; NAME.safetensors (or '-', stdout) is one \
            file with every tensor; NAME.h5 or NAME.hdf5 one HDF5 file; any other name a folder: a PEFT adapter \
            folder for adapters (adapter_config.json from the first input, with r, lora_alpha, target_modules \
            and use_rslora: false set for the merged factors), else the first input's files. An option the \
            method does not use (--density for task-arithmetic, --election outside ties and dare-ties, --seed \
            outside dare-*, --scope outside ties and magnitude-prune) is refused, naming the method.

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

    @Option(name: .shortAndLong, help: "Output: a folder, NAME.safetensors, NAME.h5 / NAME.hdf5, NAME.cpeft, or '-' (safetensors on stdout).")
    var output: String?

    @Option(help: "A JSON (.json) or YAML file with the same settings (keys: \(MergeSettings.CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))); flags override it.")
    var config: String?

    @Option(help: "The merge method (default task-arithmetic; dare_ties and other PEFT/mergekit spellings work too).")
    var method: MergeMethodName?

    @Option(parsing: .unconditional, help: "Density each expert keeps for ties, dare-* and magnitude-prune: \(Density.argumentHelp). Default 20.",
            transform: Density.argument)
    var density: Density?

    @Option(parsing: .unconditional, help: "Comma-separated weights, one per input (default 1 each).",
            transform: MergeSettings.Weights.argument)
    var weights: MergeSettings.Weights?

    @Option(name: .customLong("lambda"), parsing: .unconditional, help: "Scale of the merged residual (default 1).")
    var lambda: Double?

    @Option(help: "Base model of full fine-tunes (file, folder or index): residuals are input − base, the output base + merge.")
    var base: String?

    @Option(help: "Sign election for ties and dare-ties (default total).")
    var election: SignElection?

    @Option(parsing: .unconditional, help: "Seed of DARE's drop masks (default 0); the same seed gives the same bytes.")
    var seed: UInt64?

    @Option(help: "Top-k of ties and magnitude-prune: per tensor (default, as PEFT) or global (per expert).")
    var scope: AdapterMerger.Options.Scope?

    @Option(help: "LoRA merge: exact (default; merges ΔW = s·B·A) or factors (PEFT's per-factor combination).")
    var lora: AdapterMerger.Options.LoRAMode?

    @Option(parsing: .unconditional, help: "Rank of LoRA modules factored by SVD (task-arithmetic: truncates the exact merge; others: default the largest input rank).")
    var rank: Int?

    @Option(parsing: .unconditional, help: "For a .cpeft output: density of the compression, \(Density.argumentHelp). Default 20.",
            transform: Density.argument)
    var outDensity: Density?

    @Option(parsing: .unconditional, help: "For a .cpeft output: α of the compression, or auto (default).",
            transform: CompressionOptions.Alpha.argument)
    var outAlpha: CompressionOptions.Alpha?

    @Flag(help: "Expand compressed experts to floats even where the ternary path applies (a reference for checks).")
    var expand = false

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var common: CommonOptions

    /// The settings the flags give (`nil` where a flag is absent, so the config file's value stands).
    var flags: MergeSettings {
        MergeSettings(
            inputs: inputs.isEmpty ? nil : inputs, output: output, method: method, density: density, weights: weights,
            lambda: lambda, base: base, election: election, seed: seed, scope: scope, lora: lora, rank: rank,
            outDensity: outDensity, outAlpha: outAlpha, force: force ? true : nil)
    }

    /// The config file's settings overridden by the flags, with the defaults applied and checked.
    ///
    /// - Throws: ``CLIError`` for an unreadable config file (``ExitStatus/ioError``) or one that is not a
    ///   mapping of the known keys (``ExitStatus/usage``); ``SettingsError`` for settings that do not fit
    ///   together.
    func plan() throws -> MergePlan {
        let file = try config.map(MergeSettings.load(path:)) ?? MergeSettings()
        return try file.overridden(by: flags).plan(expand: expand)
    }

    func validate() throws {
        // Reads the config file, never an input. A config that cannot be read is reported by run(),
        // with the exit code of an I/O error.
        do {
            _ = try plan()
        } catch let error as SettingsError {
            throw ValidationError(error.description)
        } catch let error as CLIError where error.status == .usage {
            throw ValidationError(error.message)
        } catch let error as CLIError where error.status == .ioError {
        }
    }

    func run() throws {
        common.setUp()
        let plan = try plan()
        let progress = Progress("merging", quiet: common.quiet)
        let outcome: MergePlan.Outcome
        do {
            outcome = try plan.run(protecting: [config].compactMap { $0 }, log: { Log.logger.debug("\($0)") },
                                   progress: { progress.update($0, $1) })
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        let emit: (String) -> Void = { plan.output == "-" ? Terminal.err($0) : Terminal.out($0) }
        if common.json {
            emit(Terminal.json(CommandReports.merge(outcome, plan: plan)))
        } else if !common.quiet {
            emit(Reports.mergeText(outcome, plan: plan))
        }
        if !common.quiet { outcome.warnings.forEach(Terminal.warn) }
    }
}
