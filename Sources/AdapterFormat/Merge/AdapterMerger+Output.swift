import Foundation
import Quantize
import TaskVector

/// Writing the merge: every output tensor is merged inside the safetensors writer's producer, so
/// tensors are merged, encoded and written one at a time.
extension AdapterMerger {
    /// Merges and writes the result.
    ///
    /// - ``Destination/folder``: for adapters a PEFT adapter folder (`adapter_config.json` from the
    ///   first input, see ``MergedAdapterConfig``, and `adapter_model.safetensors`); for residuals the
    ///   first input's files (shards and their index).
    /// - ``Destination/file``: every tensor in one safetensors file.
    /// - ``Destination/container(_:zstdLevel:)``: the folder output, written to a temporary folder
    ///   beside `path`, then compressed with ``AdapterCompressor`` exactly as `compeft compress` would
    ///   compress that folder (with the base, when one was given).
    ///
    /// Outputs are written to a temporary file or folder and renamed into place when complete.
    ///
    /// - Parameters:
    ///   - overwrite: replace an existing output.
    ///   - progress: called after each output tensor with (done, total).
    /// - Throws: what reading, merging or writing throws; nothing is left at `path` then.
    public func write(to path: String, as destination: Destination, overwrite: Bool = false,
                      progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        tensorReports = []
        moduleReports = []
        moduleCache = [:]
        thresholds = try findThresholds()
        var files: [String] = []
        var bytes: UInt64 = 0
        var compression: AdapterCompressor.Report?
        switch destination {
        case .folder:
            let folder = try AtomicDirectoryWriter(path: path, overwrite: overwrite)
            (files, bytes) = try writeFolder(folder, progress: progress)
            try folder.commit()
        case .file:
            let writer = try AtomicFileWriter(path: path, overwrite: overwrite)
            try SafeTensorsWriter.write(entries(outputs, progress: progress), metadata: singleFileMetadata, to: writer)
            try writer.commit()
            files = [path]
            bytes = writer.bytesWritten
        case .container(let compressionOptions, let zstdLevel):
            try compressionOptions.validate()
            let writer = try AtomicFileWriter(path: path, overwrite: overwrite)
            let scratch = try AtomicDirectoryWriter(path: path + ".merged", overwrite: true)
            defer { scratch.abandon() }
            _ = try writeFolder(scratch, progress: progress)
            let merged = try TaskVectorInput.load(path: scratch.temporaryPath, base: base?.path)
            let report = try AdapterCompressor.compress(merged, options: compressionOptions, to: writer, zstdLevel: zstdLevel)
            files = [path]
            bytes = report.outputBytes
            compression = report
        }
        let byName = tensorReports.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        return Report(outputPath: path, files: files, bytesWritten: bytes, tensors: byName, modules: moduleReports,
                      compression: compression)
    }

    /// Writes the folder layout into `folder` (not committed).
    func writeFolder(_ folder: AtomicDirectoryWriter, progress: ((Int, Int) -> Void)?) throws -> ([String], UInt64) {
        var names: [String] = []
        var bytes: UInt64 = 0
        func put(_ name: String, _ body: (AtomicFileWriter) throws -> Void) throws {
            let w = try folder.file(name)
            try body(w)
            try w.commit()
            names.append(name)
            bytes += w.bytesWritten
        }
        if let config = try mergedAdapterConfig() {
            try put("adapter_config.json") { try $0.write(config) }
        } else {
            for f in sources[0].auxiliaryFiles { try put(f.name) { try $0.write(f.bytes) } }
        }
        let byFile = Dictionary(grouping: outputs, by: \.file)
        var done = 0
        for file in byFile.keys.sorted() {
            try put(file) { w in
                try SafeTensorsWriter.write(entries(byFile[file]!, progress: { _, _ in
                    done += 1
                    progress?(done, self.outputs.count)
                }), metadata: sources[0].fileMetadata[file] ?? [:], to: w)
            }
        }
        return (names, bytes)
    }

    /// `__metadata__` for a one-file output: the first input's, when it has one tensor file.
    var singleFileMetadata: [String: String] {
        let files = Set(sources[0].tensors.map(\.file))
        guard files.count == 1, let only = files.first else { return [:] }
        return sources[0].fileMetadata[only] ?? [:]
    }

    /// The merged adapter's `adapter_config.json`; `nil` for residuals.
    func mergedAdapterConfig() throws -> [UInt8]? {
        guard family != .residual, var config = configs.first else { return nil }
        config.unite("target_modules", over: configs)
        if family == .ia3 { config.unite("feedforward_modules", over: configs) }
        if family == .lora {
            config.setLoRARanks(units.compactMap { unit in
                if case .lora(let m) = unit { (m.key, m.outRank) } else { nil }
            })
        }
        return try config.bytes()
    }

    /// Writer entries whose producers merge their tensor when the writer asks for its bytes.
    func entries(_ list: [OutputTensor], progress: ((Int, Int) -> Void)?) -> [SafeTensorsWriter.Entry] {
        var done = 0
        return list.map { o in
            SafeTensorsWriter.Entry(name: o.name, dtype: o.dtype, shape: o.shape) { sink in
                try self.produce(o, sink: sink)
                done += 1
                progress?(done, list.count)
            }
        }
    }

    /// Merges one output tensor and streams its bytes to `sink`.
    func produce(_ o: OutputTensor, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch units[o.unit] {
        case .residual(let name, let expected):
            var (values, path) = try mergeResidual(name, expected: expected)
            try addInit(to: &values, name: name, expected: expected)
            try emit(values, as: o.dtype, sink)
            tensorReports.append(TensorReport(name: o.name, dtype: o.dtype, shape: o.shape, how: .merged, path: path))
        case .kept(let name):
            let kept = try mergeKept(name)
            if let bytes = kept.bytes {
                try bytes.withUnsafeBytes { try sink($0) }
            } else {
                try emit(kept.values!, as: o.dtype, sink)
            }
            tensorReports.append(TensorReport(name: o.name, dtype: o.dtype, shape: o.shape,
                                              how: kept.copied ? .copied : .mergedValues, path: nil))
        case .lora(let m):
            let factors: LoRAFactors
            if let cached = moduleCache.removeValue(forKey: o.unit) {
                factors = cached
            } else {
                factors = try mergeModule(m)
                moduleCache[o.unit] = factors
            }
            try emit(o.part == .loraA ? factors.a : factors.b, as: o.dtype, sink)
            tensorReports.append(TensorReport(name: o.name, dtype: o.dtype, shape: o.shape, how: .lora, path: nil))
        }
    }

    /// Turns a merged residual into the values written: init + τ.
    func addInit(to values: inout [Float], name: String, expected: InitRule?) throws {
        switch family {
        case .lora, .ia3:
            if expected == .one {
                for i in values.indices { values[i] += 1 }
            }
        case .residual:
            guard let base, let b = base.data(name) else { return }
            let initial = [Float](unsafeUninitializedCapacity: b.count) { out, n in
                b.loadFloats(from: 0, into: out)
                n = b.count
            }
            for i in values.indices { values[i] += initial[i] }
        }
    }

    func emit(_ values: [Float], as dtype: DType, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * dtype.byteSize, 1), alignment: 16)
        defer { out.deallocate() }
        values.withUnsafeBufferPointer { FloatEncoding.store($0, as: dtype, into: out) }
        try sink(UnsafeRawBufferPointer(rebasing: out[0..<(values.count * dtype.byteSize)]))
    }
}
