import AdapterFormat
import Quantize
import TaskVector

/// A merge with every setting decided: the defaults applied and every check made that needs no
/// input file.
struct MergePlan {
    var inputs: [String]
    var output: String
    var base: String?
    var options: AdapterMerger.Options
    var destination: AdapterMerger.Destination
    var method: MergeMethodName
    var density: Density
    var election: SignElection?
    var force: Bool
}

extension MergeSettings {
    /// The plan these settings describe: defaults for what they leave out (task arithmetic, density
    /// 20 %, total election, weights 1, λ 1, seed 0, tensor scope, exact LoRA, `.cpeft` output
    /// density 20 % and α auto), and the checks between settings.
    ///
    /// - Parameter expand: `--expand`, which only the command line sets.
    /// - Throws: ``CLIError`` with ``ExitStatus/usage`` naming the setting.
    func plan(expand: Bool) throws(CLIError) -> MergePlan {
        func usage(_ message: String) -> CLIError { CLIError(status: .usage, message: message) }
        guard let inputs, !inputs.isEmpty else { throw usage("give at least one INPUT (or \"inputs\" in --config)") }
        guard let output else { throw usage("give an output with -o (or \"output\" in --config)") }
        let method = method ?? .taskArithmetic
        let density = density ?? CompressionOptions.defaultDensity
        let weights = weights?.values ?? Array(repeating: 1, count: inputs.count)
        guard weights.count == inputs.count else {
            throw usage("--weights gives \(weights.count) weight(s) for \(inputs.count) input(s)")
        }
        let lambda = lambda ?? 1
        guard lambda.isFinite else { throw usage("--lambda must be a finite number") }
        let lora = lora ?? .exact
        if let rank, rank <= 0 { throw usage("--rank must be positive, got \(rank)") }
        if rank != nil && lora == .factors { throw usage("--rank applies to --lora exact; --lora factors keeps the inputs' rank") }
        let mergeMethod = method.method(density: density, election: election ?? .total)
        let destination: AdapterMerger.Destination
        if output.lowercased().hasSuffix(".cpeft") {
            let options = CompressionOptions(density: outDensity ?? CompressionOptions.defaultDensity, alpha: outAlpha ?? .auto)
            do { try options.validate() } catch { throw usage("--out-\(error.message)") }
            destination = .container(options, zstdLevel: 19)
        } else {
            if outDensity != nil || outAlpha != nil {
                throw usage("--out-density and --out-alpha apply to a .cpeft output; '\(output)' is not one")
            }
            destination = output == "-" || output.lowercased().hasSuffix(".safetensors") ? .file : .folder
        }
        return MergePlan(
            inputs: inputs, output: output, base: base,
            options: AdapterMerger.Options(method: mergeMethod, weights: weights, lambda: lambda, seed: seed ?? 0,
                                           scope: scope ?? .tensor, lora: lora, rank: rank, expand: expand),
            destination: destination, method: method, density: density, election: mergeMethod.election,
            force: force ?? false)
    }
}
