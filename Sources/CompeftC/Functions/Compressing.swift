import AdapterFormat
public import CCompeft
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Quantize
import TaskVector

// compeft_compress and compeft_decompress (include/compeft.h, "Writing and checking containers"): the
// command line's compress and decompress as calls, with the same options, checks and JSON reports.

/// `compeft_compress`'s options, checked as `compeft compress` checks its flags.
private struct CompressRequest {
    static let keys: Set<String> = ["density", "alpha", "method", "scope", "scale", "lora_gauge", "base", "compress_all", "init",
                                    "threads", "zstd_level", "force"]

    var options: CompressionOptions
    var base: String?
    var load: TaskVectorInput.Options
    var threads: Int
    var zstdLevel: Int32
    var force: Bool

    init(_ o: OptionsObject) throws(ABIError) {
        let f = o.function
        let methodName = try o.string("method") ?? "compeft"
        guard let method = CompressionOptions.Method(rawValue: methodName) else {
            throw .invalidArgument("\(f): method must be compeft, stc or prune, got '\(methodName)'")
        }
        var scope: CompressionOptions.Scope?
        if let name = try o.string("scope") {
            guard let value = CompressionOptions.Scope(rawValue: name) else {
                throw .invalidArgument("\(f): scope must be global or tensor, got '\(name)'")
            }
            scope = value
        }
        var scale: CompressionOptions.Scale?
        if let name = try o.string("scale") {
            guard let value = CompressionOptions.Scale(rawValue: name) else {
                throw .invalidArgument("\(f): scale must be global, tensor or module, got '\(name)'")
            }
            scale = value
        }
        var gauge: CompressionOptions.LoRAGauge?
        if let name = try o.string("lora_gauge") {
            guard let value = CompressionOptions.LoRAGauge(rawValue: name) else {
                throw .invalidArgument("\(f): lora_gauge must be trained, svd, svd-dct or auto, got '\(name)'")
            }
            gauge = value
        }
        let alphaText = try o.text("alpha") ?? "auto"
        guard let alpha = CompressionOptions.Alpha(alphaText) else {
            throw .invalidArgument("\(f): alpha must be a positive number or 'auto', got '\(alphaText)'")
        }
        options = CompressionOptions(method: method, scope: scope, scale: scale, loraGauge: gauge,
                                     density: try o.density("density") ?? CompressionOptions.defaultDensity, alpha: alpha)
        // Options that cannot go together whatever the input (the input's kind is checked once it is read).
        do { _ = try options.rule(for: .lora) } catch { throw .invalidArgument("\(f): \(error.message)") }
        var initOverride: InitRule?
        if let name = try o.string("init") {
            guard let rule = InitRule(rawValue: name), rule != .base else {
                throw .invalidArgument("\(f): init must be zero or one, got '\(name)'")
            }
            initOverride = rule
        }
        load = TaskVectorInput.Options(compressAll: try o.bool("compress_all") ?? false, initOverride: initOverride)
        base = try o.string("base")
        threads = try o.int("threads") ?? defaultThreadCount
        guard threads >= 1 else { throw .invalidArgument("\(f): threads must be at least 1, got \(threads)") }
        let level = try o.int("zstd_level") ?? 19
        guard (1...22).contains(level) else { throw .invalidArgument("\(f): zstd_level must be 1…22, got \(level)") }
        zstdLevel = Int32(level)
        force = try o.bool("force") ?? false
    }
}

@c @implementation
public func compeft_compress(_ input: UnsafePointer<CChar>!, _ output: UnsafePointer<CChar>!, _ optionsJSON: UnsafePointer<CChar>!,
                             _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> compeft_status {
    outReport?.pointee = nil
    return withStatus {
        let function = "compeft_compress"
        let inputPath = try PathArguments.path(input, "input", function: function)
        let outputPath = try PathArguments.path(output, "output", function: function)
        let request = try CompressRequest(OptionsObject(optionsJSON, function: function, known: CompressRequest.keys))
        if let base = request.base { _ = try PathArguments.path(base, "base", function: function) }
        try PathArguments.checkOutput(outputPath, isNotAnyOf: [inputPath] + (request.base.map { [$0] } ?? []))
        let taskVector = try TaskVectorInput.load(path: inputPath, base: request.base, options: request.load)
        do throws(QuantizeError) { _ = try request.options.rule(for: taskVector.expertKind) } catch {
            throw ABIError.invalidArgument("\(function): \(error.message)")
        }
        let writer = try AtomicFileWriter(path: outputPath, overwrite: request.force)
        let report: AdapterCompressor.Report
        do {
            report = try AdapterCompressor.compress(taskVector, options: request.options, to: writer,
                                                    zstdLevel: request.zstdLevel, threads: request.threads)
        } catch {
            writer.abandon()
            throw error
        }
        try OwnedString.hand(ReportJSON.encode(ReportJSON.compress(report, input: inputPath, output: outputPath)), to: outReport)
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
        let o = try OptionsObject(optionsJSON, function: f, known: ["dtype", "format", "base", "threads", "force"])
        var dtype: DType?
        if let name = try o.string("dtype") {
            guard let d = DType(userSpelling: name), ContainerReader.decodableTypes.contains(d) else {
                throw ABIError.invalidArgument("\(f): dtype must be f32, f16 or bf16, got '\(name)'")
            }
            dtype = d
        }
        let format = try o.string("format") ?? "safetensors"
        guard ["safetensors", "hdf5"].contains(format) else {
            throw ABIError.invalidArgument("\(f): format must be safetensors or hdf5, got '\(format)'")
        }
        let threads = try o.int("threads") ?? defaultThreadCount
        guard threads >= 1 else { throw ABIError.invalidArgument("\(f): threads must be at least 1, got \(threads)") }
        let base = try o.string("base")
        let force = try o.bool("force") ?? false
        try PathArguments.checkOutput(outputPath, isNotAnyOf: [inputPath] + (base.map { [$0] } ?? []))
        let reader = try ContainerReader(source: FileByteSource(path: inputPath))
        let checkpoint = try base.map { try Checkpoint(path: $0) }
        let report = format == "hdf5"
            ? try AdapterDecompressor.decompressToHDF5(reader, to: outputPath, dtype: dtype, base: checkpoint, overwrite: force)
            : try AdapterDecompressor.decompress(reader, to: outputPath, dtype: dtype, base: checkpoint, overwrite: force,
                                                 threads: threads)
        try OwnedString.hand(ReportJSON.encode(ReportJSON.decompress(report, input: inputPath, output: outputPath)), to: outReport)
    }
}

@c @implementation
public func compeft_string_free(_ string: UnsafeMutablePointer<CChar>!) {
    free(string)
}
