import AdapterFormat
public import CCompeft
import Commands
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Quantize
import TaskVector

// compeft_compress and compeft_decompress (include/compeft.h, "Writing and checking containers"): the
// command line's compress and decompress as calls, with the same settings, checks and JSON reports
// (the Commands target).

extension CompressSettings {
    /// The keys of `compeft_compress`'s options.
    static let optionKeys: Set<String> = ["density", "alpha", "method", "scope", "scale", "lora_gauge", "base", "compress_all", "init",
                                          "threads", "zstd_level", "force"]

    /// The settings `compeft_compress`'s options give; a density is a number of percent.
    init(_ o: OptionsObject, input: String, output: String) throws(ABIError) {
        self.init(input: input, output: output, method: try o.named("method", CompressionOptions.Method.self),
                  scope: try o.named("scope", CompressionOptions.Scope.self), scale: try o.named("scale", CompressionOptions.Scale.self),
                  loraGauge: try o.named("lora_gauge", CompressionOptions.LoRAGauge.self), density: try o.density("density"),
                  base: try o.string("base"), compressAll: try o.bool("compress_all") ?? false,
                  initOverride: try o.named("init", InitRule.self), threads: try o.int("threads"),
                  zstdLevel: try o.int("zstd_level"), force: try o.bool("force") ?? false)
        if let text = try o.text("alpha") {
            guard let alpha = CompressionOptions.Alpha(text) else {
                throw .invalidArgument("\(o.function): alpha must be a positive number or 'auto', got '\(text)'")
            }
            self.alpha = alpha
        }
        if let base { _ = try PathArguments.path(base, "base", function: o.function) }
    }
}

extension DecompressSettings {
    /// The keys of `compeft_decompress`'s options.
    static let optionKeys: Set<String> = ["dtype", "format", "base", "threads", "force"]

    /// The settings `compeft_decompress`'s options give.
    init(_ o: OptionsObject, input: String, output: String) throws(ABIError) {
        self.init(input: input, output: output, dtype: try o.named("dtype", DType.self), format: try o.named("format", OutputFormat.self),
                  base: try o.string("base"), threads: try o.int("threads"), force: try o.bool("force") ?? false)
    }
}

@c @implementation
public func compeft_compress(_ input: UnsafePointer<CChar>!, _ output: UnsafePointer<CChar>!, _ optionsJSON: UnsafePointer<CChar>!,
                             _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> compeft_status {
    outReport?.pointee = nil
    return withStatus {
        let f = "compeft_compress"
        let inputPath = try PathArguments.path(input, "input", function: f)
        let outputPath = try PathArguments.path(output, "output", function: f)
        let settings = try CompressSettings(OptionsObject(optionsJSON, function: f, known: CompressSettings.optionKeys),
                                            input: inputPath, output: outputPath)
        let report = try ABIError.settings(f) { try settings.plan().run() }
        try OwnedString.hand(CommandReports.compress(report, input: inputPath, output: outputPath), to: outReport)
    }
}

@c @implementation
public func compeft_decompress(_ input: UnsafePointer<CChar>!, _ output: UnsafePointer<CChar>!, _ optionsJSON: UnsafePointer<CChar>!,
                               _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> compeft_status {
    outReport?.pointee = nil
    return withStatus {
        let f = "compeft_decompress"
        let inputPath = try PathArguments.path(input, "input", function: f)
        let outputPath = try PathArguments.path(output, "output", function: f)
        let settings = try DecompressSettings(OptionsObject(optionsJSON, function: f, known: DecompressSettings.optionKeys),
                                              input: inputPath, output: outputPath)
        let plan = try ABIError.settings(f) { try settings.plan() }
        let outcome = try plan.run()
        try OwnedString.hand(CommandReports.decompress(outcome, plan: plan), to: outReport)
    }
}

@c @implementation
public func compeft_string_free(_ string: UnsafeMutablePointer<CChar>!) {
    free(string)
}
