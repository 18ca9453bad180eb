import AdapterFormat
public import CCompeft
import Foundation
import Quantize
import TaskVector

// compeft_merge (include/compeft.h, "Writing and checking containers"): `compeft merge` as a call.

/// `compeft_merge`'s options, checked as `compeft merge` checks its flags and config file.
struct MergeRequest {
    static let keys: Set<String> = [
        "method", "density", "weights", "lambda", "base", "election", "seed", "scope", "lora", "rank", "out_density",
        "out_alpha", "expand", "force",
    ]
    static let methodNames = ["task-arithmetic", "ties", "dare-linear", "dare-ties", "magnitude-prune"]

    var output: String
    var base: String?
    var options: AdapterMerger.Options
    var destination: AdapterMerger.Destination
    var destinationName: String
    var methodName: String
    var density: Double
    var force: Bool

    init(_ o: OptionsObject, inputCount: Int, output: String) throws(ABIError) {
        let f = o.function
        self.output = output
        let givenMethod = try o.string("method") ?? "task-arithmetic"
        methodName = givenMethod.lowercased().replacingOccurrences(of: "_", with: "-")
        guard Self.methodNames.contains(methodName) else {
            throw .invalidArgument("\(f): method must be one of \(Self.methodNames.joined(separator: ", ")); got '\(givenMethod)'")
        }
        density = try o.double("density") ?? 20
        guard density > 0, density <= 100 else { throw .invalidArgument("\(f): density must be a percentage in (0, 100], got \(density)") }
        let electionName = try o.string("election") ?? "total"
        guard let election = SignElection(rawValue: electionName.lowercased()) else {
            throw .invalidArgument("\(f): election must be total or frequency, got '\(electionName)'")
        }
        let weights = try o.doubles("weights") ?? Array(repeating: 1, count: inputCount)
        guard weights.count == inputCount else {
            throw .invalidArgument("\(f): weights gives \(weights.count) weight(s) for \(inputCount) input(s)")
        }
        let lambda = try o.double("lambda") ?? 1
        let scopeName = try o.string("scope") ?? "tensor"
        guard let scope = AdapterMerger.Options.Scope(rawValue: scopeName) else {
            throw .invalidArgument("\(f): scope must be tensor or global, got '\(scopeName)'")
        }
        let loraName = try o.string("lora") ?? "exact"
        guard let lora = AdapterMerger.Options.LoRAMode(rawValue: loraName) else {
            throw .invalidArgument("\(f): lora must be exact or factors, got '\(loraName)'")
        }
        let rank = try o.int("rank")
        if let rank, rank <= 0 { throw .invalidArgument("\(f): rank must be positive, got \(rank)") }
        if rank != nil && lora == .factors {
            throw .invalidArgument("\(f): rank applies to lora 'exact'; lora 'factors' keeps the inputs' rank")
        }
        let share = Density.percent(density)  // checked above
        let method: MergeMethod = switch methodName {
        case "ties": .ties(density: share, election: election)
        case "dare-linear": .dareLinear(density: share)
        case "dare-ties": .dareTies(density: share, election: election)
        case "magnitude-prune": .magnitudePrune(density: share)
        default: .taskArithmetic
        }
        let outDensity = try o.double("out_density")
        let outAlpha = try o.text("out_alpha")
        if output.lowercased().hasSuffix(".cpeft") {
            guard let alpha = CompressionOptions.Alpha(outAlpha ?? "auto") else {
                throw .invalidArgument("\(f): out_alpha must be a positive number or 'auto', got '\(outAlpha ?? "")'")
            }
            let compression = CompressionOptions(density: try o.density("out_density") ?? CompressionOptions.defaultDensity, alpha: alpha)
            do throws(QuantizeError) { try compression.validate() } catch { throw .invalidArgument("\(f): out_\(error.message)") }
            destination = .container(compression, zstdLevel: 19)
            destinationName = "cpeft"
        } else {
            if outDensity != nil || outAlpha != nil {
                throw .invalidArgument("\(f): out_density and out_alpha apply to a .cpeft output; '\(output)' is not one")
            }
            let file = output.lowercased().hasSuffix(".safetensors")
            destination = file ? .file : .folder
            destinationName = file ? "safetensors" : "folder"
        }
        base = try o.string("base")
        options = AdapterMerger.Options(method: method, weights: weights, lambda: lambda, seed: try o.uint64("seed") ?? 0,
                                        scope: scope, lora: lora, rank: rank, expand: try o.bool("expand") ?? false)
        force = try o.bool("force") ?? false
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
        let request = try MergeRequest(OptionsObject(optionsJSON, function: f, known: MergeRequest.keys),
                                       inputCount: inputCount, output: outputPath)
        try PathArguments.checkOutput(outputPath, isNotAnyOf: paths + (request.base.map { [$0] } ?? []))
        let base = try request.base.map { try Checkpoint(path: $0) }
        let sources = try paths.map { try MergeSource.open(path: $0, base: request.base) }
        if let adapter = sources.first(where: { $0.peftType != nil }), request.base != nil {
            throw ABIError.invalidArgument("\(f): base applies to full fine-tunes and residual files; '\(adapter.path)' is a PEFT adapter")
        }
        let merger = try AdapterMerger(sources: sources, base: base, options: request.options)
        if merger.mergesLoRA && request.options.lora == .factors && request.options.scope == .global {
            throw ABIError.invalidArgument("\(f): scope 'global' does not apply to lora 'factors' (PEFT trims each factor on its own)")
        }
        let report = try merger.write(to: outputPath, as: request.destination, overwrite: request.force)
        try OwnedString.hand(ReportJSON.encode(ReportJSON.merge(report, request: request, sources: sources)), to: outReport)
    }
}
