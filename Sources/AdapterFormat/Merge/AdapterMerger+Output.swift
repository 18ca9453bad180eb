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
    /// - ``Destination/hdf5``: every tensor in one HDF5 file (``writeHDF5(to:overwrite:progress:)``).
    /// - ``Destination/container(_:zstdLevel:)``: the folder output compressed with ``AdapterCompressor``,
    ///   byte for byte as `compeft compress` compresses that folder (with the base, when one was given);
    ///   the merged tensors go to the compressor without being written out and read back (see
    ///   ``mergedInput(store:progress:)``).
    ///
    /// Outputs are written to a temporary file or folder and renamed into place when complete.
    ///
    /// A merger writes once to a container: once every tensor is merged, the inputs' tensors and the
    /// plan are let go (see ``mergedInput(store:progress:)``), so that compressing the result does not
    /// hold them too. Any write after that throws (`.unsupported`), whether the first one succeeded or not.
    ///
    /// - Parameters:
    ///   - overwrite: replace an existing output.
    ///   - progress: called after each output tensor with (done, total).
    /// - Throws: what reading, merging or writing throws; nothing is left at `path` then.
    public func write(to path: String, as destination: Destination, overwrite: Bool = false,
                      progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        guard sources.allSatisfy({ if case .released = $0.storage { false } else { true } }) else {
            // A library call must not stop its host: a second write (a retry after a full disk, say) is an error.
            throw TaskVectorError(.unsupported, "this merger already wrote a container and let its inputs go; make a new AdapterMerger to write again")
        }
        tensorReports = []
        tensorReports.reserveCapacity(outputs.count)
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
            try write(outputs, metadata: singleFileMetadata, to: writer, progress: progress)
            try writer.commit()
            files = [path]
            bytes = writer.bytesWritten
        case .hdf5:
            bytes = try writeHDF5(to: path, overwrite: overwrite, progress: progress)
            files = [path]
        case .container(let compressionOptions, let zstdLevel):
            try compressionOptions.validate()
            let writer = try AtomicFileWriter(path: path, overwrite: overwrite)
            let store = try MergedTensorStore(near: path, bytes: outputs.reduce(0) { $0 + $1.byteCount })
            defer { store.discard() }
            let merged = try mergedInput(store: store, progress: progress)
            let report = try AdapterCompressor.compress(merged, options: compressionOptions, to: writer, zstdLevel: zstdLevel)
            files = [path]
            bytes = report.outputBytes
            compression = report
        }
        tensorReports.sort { $0.name.utf8Precedes($1.name) }  // in place: one array of reports, not two
        let byName = tensorReports
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
                try write(byFile[file]!, metadata: sources[0].fileMetadata[file] ?? [:], to: w, progress: { _, _ in
                    done += 1
                    progress?(done, self.outputs.count)
                })
            }
        }
        return (names, bytes)
    }

    /// The merge result as a compressor input: the input `TaskVectorInput.load` reads from the folder
    /// output (``writeFolder(_:progress:)``), without writing that folder and parsing it again.
    ///
    /// Every output tensor is merged into its output dtype, as the folder's safetensors would hold it,
    /// and kept in `store`; roles and inits come from the same rules `load` applies
    /// (`TaskVectorInput.adapter` for adapters, `TaskVectorInput.checkpoint` for residuals and full
    /// fine-tunes against the base).
    ///
    /// Once every tensor is merged, the inputs' tensors and the plan are let go (see
    /// ``MergeSource/releaseTensors()``) before the compressor input is made: a merger writes once to a
    /// container, and neither it nor the compressor needs them again.
    func mergedInput(store: MergedTensorStore, progress: ((Int, Int) -> Void)?) throws -> TaskVectorInput {
        var entries: [Checkpoint.Entry] = []
        entries.reserveCapacity(outputs.count)
        var tensorBytes = 0
        let bytewise = { (a: OutputTensor, b: OutputTensor) in a.name.utf8Precedes(b.name) }
        for o in outputs.sorted(by: bytewise) {
            let data = try store.tensor(dtype: o.dtype, byteCount: o.byteCount) { fill in try produce(o, sink: fill) }
            tensorBytes += o.byteCount
            entries.append(Checkpoint.Entry(name: o.name, dtype: o.dtype, shape: o.shape, fileName: o.file, data: data))
            progress?(entries.count, outputs.count)
        }
        var fileMetadata: [String: [String: String]] = [:]
        for file in Set(outputs.map(\.file)) {
            if let m = sources[0].fileMetadata[file], !m.isEmpty { fileMetadata[file] = m }
        }
        let outputFiles = Set(outputs.map(\.file)).sorted()
        let config = try mergedAdapterConfig()
        for s in sources { s.releaseTensors() }
        (units, outputs, moduleCache) = ([], [], [:])
        if let config {
            let parsed = try AdapterConfig(bytes: config, path: "adapter_config.json")
            return try TaskVectorInput.adapter(
                config: parsed, configPath: "adapter_config.json", entries,
                fileMetadata: fileMetadata["adapter_model.safetensors"],
                sourceFiles: ["adapter_config.json", "adapter_model.safetensors"], inputBytes: config.count + tensorBytes)
        }
        let auxiliary = sources[0].auxiliaryFiles
        return try TaskVectorInput.checkpoint(
            entries, fileMetadata: fileMetadata, auxiliaryFiles: auxiliary, sourceFiles: outputFiles,
            inputBytes: auxiliary.reduce(tensorBytes) { $0 + $1.bytes.count }, path: "the merge", base: base)
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
    /// Writes `list` as one safetensors file, merging each tensor as its bytes are written.
    func write(_ list: [OutputTensor], metadata: [String: String], to writer: AtomicFileWriter,
               progress: ((Int, Int) -> Void)?) throws {
        var done = 0
        try SafeTensorsWriter.write(list.lazy.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata, to: writer) { i, sink in
            try produce(list[i], sink: sink)
            done += 1
            progress?(done, list.count)
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
        // F32 is the values' own bytes (``FloatEncoding/store(_:as:into:)`` copies them): no buffer to fill.
        if dtype == .f32 {
            try values.withUnsafeBytes { try sink($0) }
            return
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * dtype.byteSize, 1), alignment: 16)
        defer { out.deallocate() }
        values.withUnsafeBufferPointer { FloatEncoding.store($0, as: dtype, into: out) }
        try sink(UnsafeRawBufferPointer(rebasing: out[0..<(values.count * dtype.byteSize)]))
    }
}

extension AdapterMerger.OutputTensor {
    /// Bytes of the tensor in its dtype.
    var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
}

/// Where a merge to a container keeps the merged tensors until they are compressed: memory while the
/// merged model is at most 1/8 of physical memory, else a temporary file beside the output — its
/// blocks reserved up front, mapped, and deleted when the merge ends — so a merge larger than memory
/// still runs in bounded memory, as the folder output does.
///
/// Either way the tensors lie back to back in one region sized up front, and each tensor is a view of
/// its bytes: no allocation per tensor (a merge may have a million).
final class MergedTensorStore {
    /// The memory region when the tensors are kept in memory: the owner of every view of it.
    private final class Memory {
        let region: UnsafeMutableRawBufferPointer
        init(byteCount: Int) { region = .allocate(byteCount: max(byteCount, 1), alignment: 64) }
        deinit { region.deallocate() }
    }

    private let file: AtomicFileWriter?
    /// What keeps `region` alive for the views: the temporary file or the memory.
    private let owner: AnyObject
    private let region: UnsafeMutableRawBufferPointer
    private var used = 0

    /// - Parameters:
    ///   - path: the output; the temporary file, when one is needed, is created beside it.
    ///   - bytes: the merged tensors' total size.
    ///   - memoryLimit: the most bytes kept in memory (default: 1/8 of physical memory).
    /// - Throws: ``TaskVectorError`` (`.io`) when the temporary file cannot be created, reserved or mapped.
    init(near path: String, bytes: Int, memoryLimit: UInt64 = ProcessInfo.processInfo.physicalMemory / 8) throws {
        if bytes > 0, UInt64(bytes) > memoryLimit {
            let file = try AtomicFileWriter(path: path + ".merged", overwrite: true)
            if let region = try file.mapForWriting(size: bytes) {
                (self.file, owner, self.region) = (file, file, region)
                return
            }
            // A file system that cannot reserve space: keep the tensors in memory instead.
            file.abandon()
        }
        let memory = Memory(byteCount: bytes)
        (file, owner, region) = (nil, memory, memory.region)
    }

    /// Stores one tensor of `byteCount` bytes, which `produce` hands to the sink it is given (in one or
    /// more pieces), and returns a view of it.
    func tensor(dtype: DType, byteCount: Int,
                _ produce: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> TensorData {
        let start = used
        try produce { piece in
            precondition(used + piece.count <= start + byteCount, "a merged tensor is larger than its shape")
            UnsafeMutableRawBufferPointer(rebasing: region[used..<(used + piece.count)]).copyMemory(from: piece)
            used += piece.count
        }
        precondition(used == start + byteCount, "a merged tensor of \(used - start) bytes, expected \(byteCount)")
        return TensorData(dtype: dtype, bytes: UnsafeRawBufferPointer(rebasing: region[start..<used]), owner: owner)
    }

    /// Whether the tensors live in a temporary file rather than in memory.
    var isFileBacked: Bool { file != nil }

    /// Deletes the temporary file, if there is one; its tensors must not be used after.
    func discard() {
        file?.abandon()
    }
}
