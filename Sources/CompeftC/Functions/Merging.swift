import AdapterFormat
public import CCompeft
import Commands
import Foundation
import Quantize
import TaskVector

// compeft_merge (include/compeft.h, "Writing and checking containers"): `compeft merge` as a call.

extension MergeSettings {
    /// The keys of `compeft_merge`'s options: a config file's, less `inputs` and `output` (arguments of
    /// the call), plus `expand`.
    static let optionKeys: Set<String> = Set(CodingKeys.allCases.map(\.rawValue)).subtracting(["inputs", "output"]).union(["expand"])

    /// The settings `compeft_merge`'s options give; a density is a number of percent.
    init(_ o: OptionsObject, inputs: [String], output: String) throws(ABIError) {
        self.init(inputs: inputs, output: output)
        method = try o.named("method", MergeMethodName.self)
        density = try o.density("density")
        weights = try o.doubles("weights").map(Weights.init)
        lambda = try o.double("lambda")
        base = try o.string("base")
        election = try o.named("election", SignElection.self)
        seed = try o.uint64("seed")
        scope = try o.named("scope", AdapterMerger.Options.Scope.self)
        lora = try o.named("lora", AdapterMerger.Options.LoRAMode.self)
        rank = try o.int("rank")
        outDensity = try o.density("out_density")
        if let text = try o.text("out_alpha") {
            guard let alpha = CompressionOptions.Alpha(text) else {
                throw .invalidArgument("\(o.function): out_alpha must be a positive number or 'auto', got '\(text)'")
            }
            outAlpha = alpha
        }
        force = try o.bool("force")
    }
}

@c @implementation
public func compeft_merge(_ inputs: UnsafePointer<UnsafePointer<CChar>?>!, _ inputCount: Int, _ output: UnsafePointer<CChar>!,
                          _ optionsJSON: UnsafePointer<CChar>!,
                          _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> compeft_status {
    outReport?.pointee = nil
    return withStatus {
        let f = "compeft_merge"
        guard inputCount > 0 else { throw ABIError.invalidArgument("\(f): input_count is \(UInt(bitPattern: inputCount)); give at least one input") }
        guard inputCount <= 1 << 20 else { throw ABIError.invalidArgument("\(f): input_count \(UInt(bitPattern: inputCount)) is not plausible") }
        guard let inputs else { throw ABIError.invalidArgument("\(f): inputs is NULL") }
        var paths: [String] = []
        for i in 0..<inputCount { paths.append(try PathArguments.path(inputs[i], "inputs[\(i)]", function: f)) }
        let outputPath = try PathArguments.path(output, "output", function: f)
        let options = try OptionsObject(optionsJSON, function: f, known: MergeSettings.optionKeys)
        let settings = try MergeSettings(options, inputs: paths, output: outputPath)
        let expand = try options.bool("expand") ?? false
        let plan = try ABIError.settings(f) { try settings.plan(expand: expand) }
        let outcome = try ABIError.settings(f) { try plan.run() }
        try OwnedString.hand(CommandReports.merge(outcome, plan: plan), to: outReport)
    }
}
