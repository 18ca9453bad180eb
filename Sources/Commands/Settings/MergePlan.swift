public import AdapterFormat
import Quantize
public import TaskVector

/// A merge with every setting decided: the defaults applied and every check made that needs no
/// input file.
public struct MergePlan: Sendable {
    public var inputs: [String]
    public var output: String
    /// What `output` names (see ``OutputTarget``).
    public var target: OutputTarget
    public var base: String?
    public var options: AdapterMerger.Options
    public var destination: AdapterMerger.Destination
    public var method: MergeMethodName
    public var density: Density
    public var election: SignElection?
    public var force: Bool
    /// The settings given that only LoRA inputs use (`lora`, `rank`), refused for other inputs.
    public var loraSettings: [String]
}

extension MergeSettings {
    /// The plan these settings describe: defaults for what they leave out (task arithmetic, density
    /// 20 %, total election, weights 1, λ 1, seed 0, tensor scope, exact LoRA, `.cpeft` output
    /// density 20 % and α auto), and the checks between settings.
    ///
    /// A setting the method does not use is refused, naming the method, rather than ignored: a
    /// density for task arithmetic (which keeps every value), an election for a method without one
    /// (ties and dare-ties elect signs), a seed for a method without random masks (dare-*), a scope
    /// for a method without a magnitude top-k (ties, magnitude-prune).
    ///
    /// - Parameter expand: `--expand` (`"expand"` in the C ABI), which a config file does not hold.
    /// - Throws: ``SettingsError`` naming the setting.
    public func plan(expand: Bool) throws(SettingsError) -> MergePlan {
        guard let inputs, !inputs.isEmpty else {
            throw SettingsError { $0 == .flag ? "give at least one INPUT (or \"inputs\" in --config)" : "give at least one input" }
        }
        guard let output else { throw SettingsError { _ in "give an output with -o (or \"output\" in --config)" } }
        let method = method ?? .taskArithmetic
        try checkUsed(by: method)
        let density = density ?? CompressionOptions.defaultDensity
        let weights = weights?.values ?? Array(repeating: 1, count: inputs.count)
        guard weights.count == inputs.count else {
            throw SettingsError { "\($0.name("weights")) gives \(weights.count) weight(s) for \(inputs.count) input(s)" }
        }
        let lambda = lambda ?? 1
        guard lambda.isFinite else { throw SettingsError { "\($0.name("lambda")) must be a finite number" } }
        let lora = self.lora ?? .exact
        if let rank, rank <= 0 { throw SettingsError { "\($0.name("rank")) must be positive, got \(rank)" } }
        if rank != nil && lora == .factors {
            throw SettingsError { "\($0.name("rank")) applies to \($0.name("lora")) exact; \($0.name("lora")) factors keeps the inputs' rank" }
        }
        let mergeMethod = method.method(density: density, election: election ?? .total)
        let target = OutputTarget(path: output)
        let destination: AdapterMerger.Destination
        if target == .container {
            let options = CompressionOptions(density: outDensity ?? CompressionOptions.defaultDensity, alpha: outAlpha ?? .auto)
            do { try options.validate() } catch { throw SettingsError { ($0 == .flag ? "--out-" : "out_") + error.message } }
            destination = .container(options, zstdLevel: 19)
        } else {
            if outDensity != nil || outAlpha != nil {
                throw SettingsError {
                    "\($0.name("out_density")) and \($0.name("out_alpha")) apply to a .cpeft output; '\(output)' is not one"
                }
            }
            destination = switch target {
            case .folder: .folder
            case .hdf5: .hdf5
            default: .file
            }
        }
        return MergePlan(
            inputs: inputs, output: output, target: target, base: base,
            options: AdapterMerger.Options(method: mergeMethod, weights: weights, lambda: lambda, seed: seed ?? 0,
                                           scope: scope ?? .tensor, lora: lora, rank: rank, expand: expand),
            destination: destination, method: method, density: density, election: mergeMethod.election,
            force: force ?? false, loraSettings: [self.lora == nil ? nil : "lora", rank == nil ? nil : "rank"].compactMap { $0 })
    }

    /// Refuses every given setting that `method` does not use.
    private func checkUsed(by method: MergeMethodName) throws(SettingsError) {
        let m = method.rawValue
        if density != nil && !method.usesDensity {
            throw SettingsError { "\($0.name("density")) does not apply to \(m), which keeps every value; choose ties, dare-linear, dare-ties or magnitude-prune to trim each expert" }
        }
        if election != nil && !method.usesElection {
            throw SettingsError { "\($0.name("election")) does not apply to \(m), which elects no signs (ties and dare-ties do)" }
        }
        if seed != nil && !method.usesSeed {
            throw SettingsError { "\($0.name("seed")) does not apply to \(m), which draws no random masks (dare-linear and dare-ties do)" }
        }
        if scope != nil && !method.usesTopK {
            throw SettingsError { "\($0.name("scope")) does not apply to \(m), which takes no magnitude top-k (ties and magnitude-prune do)" }
        }
    }
}
