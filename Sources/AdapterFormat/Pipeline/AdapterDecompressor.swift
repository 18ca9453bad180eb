import Foundation
public import TaskVector
public import Quantize

/// Turns a container back into files: a PEFT adapter folder, a safetensors file, or a sharded
/// checkpoint folder, with the original names, shapes, dtypes and metadata.
public enum AdapterDecompressor {
    /// What a decompression wrote.
    public struct Report: Sendable {
        public var outputPath: String
        public var isFolder: Bool
        public var files: [String]
        public var tensorCount: Int
        public var bytesWritten: UInt64
        /// True when a full fine-tune was written as its residual because no base was given.
        public var residualOnly: Bool
        /// The files the container carries (`adapter_config.json`, a checkpoint's `config.json`) that a
        /// one-file output left out.
        public var filesLeftOut: [String] = []
    }

    /// What a decompression writes: a folder, or one safetensors file.
    public enum Layout: Sendable {
        /// A folder with the container's files: its verbatim files and each tensor file under its own name.
        case folder
        /// One safetensors file (`-`: standard output) with every tensor; the verbatim files are left out.
        case file
    }

    /// Whether the container decompresses to a folder (verbatim files or several tensor files).
    public static func writesFolder(_ index: ContainerIndex) -> Bool {
        !index.files.isEmpty || Set(index.tensors.map(\.file)).count > 1
    }

    /// Decompresses `reader` to `path`.
    ///
    /// - Parameters:
    ///   - layout: a folder or one file; `nil` chooses by the container (``writesFolder(_:)``).
    ///   - dtype: write every float tensor in this dtype instead of its original one.
    ///   - base: the base checkpoint, to rebuild a full fine-tune's weights (else its residual is written).
    ///   - overwrite: replace an existing output.
    ///   - threads: tensors decoded at once when the output is a file (it is then filled in place).
    public static func decompress(_ reader: ContainerReader, to path: String, layout: Layout? = nil, dtype override: DType? = nil,
                                  base: Checkpoint? = nil, overwrite: Bool = false, threads: Int = defaultThreadCount,
                                  progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        _ = try reader.checkedAdapterConfig()
        let index = reader.index
        let byFile = Dictionary(grouping: index.tensors, by: \.file)
        let fileNames = byFile.keys.sorted()
        let residualOnly = index.tensors.contains { $0.initRule == .base && $0.role == .residual } && base == nil
        if let base {
            for t in index.tensors where t.initRule == .base {
                guard let entry = base.entry(t.name) else {
                    throw TaskVectorError(.mismatch, file: base.path, tensor: t.name, "is in the container but not in the base")
                }
                guard entry.shape == t.shape else {
                    throw TaskVectorError(.mismatch, file: base.path, tensor: t.name, "base shape \(entry.shape) differs from the container's \(t.shape)")
                }
            }
        }
        // Each tensor as a producer that fills exactly its bytes of the output.
        func tensorsOf(_ tensors: [ContainerIndex.Tensor]) -> [OutputTensor] {
            tensors.map { t in
                let outType = (override != nil && t.dtype.isFloatingPoint) ? override! : t.dtype
                return OutputTensor(name: t.name, dtype: outType, shape: t.shape) { out in
                    if ContainerReader.decodableTypes.contains(outType), t.dtype.isFloatingPoint {
                        try reader.decode(t, as: outType, into: out, base: base?.data(t.name), residualOnly: t.initRule == .base && base == nil)
                    } else if case .exact(let raw) = try reader.payload(t), outType == t.dtype {
                        raw.withUnsafeBytes { out.copyMemory(from: $0) }
                    } else {
                        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.count)
                        defer { values.deallocate() }
                        try reader.decodeValues(t, base: base?.data(t.name), into: values)
                        FloatEncoding.store(UnsafeBufferPointer(values), as: outType, into: out)
                    }
                }
            }
        }
        let counter = ProgressCounter(total: index.tensors.count, report: progress)
        func write(_ tensors: [ContainerIndex.Tensor], metadata: [String: String], to w: AtomicFileWriter) throws {
            try writeSafeTensors(tensorsOf(tensors), metadata: metadata, to: w, threads: threads, progress: counter)
        }
        var written: UInt64 = 0
        if (layout ?? (writesFolder(index) ? .folder : .file)) == .folder {
            let folder = try AtomicDirectoryWriter(path: path, overwrite: overwrite)
            var names: [String] = []
            for f in index.files {
                let w = try folder.file(f.name)
                try w.write(try reader.contents(of: f))
                try w.commit()
                written += w.bytesWritten
                names.append(f.name)
            }
            for name in fileNames {
                let w = try folder.file(name)
                try write(byFile[name]!, metadata: index.fileMetadata[name] ?? [:], to: w)
                try w.commit()
                written += w.bytesWritten
                names.append(name)
            }
            try folder.commit()
            return Report(outputPath: path, isFolder: true, files: names, tensorCount: index.tensors.count,
                          bytesWritten: written, residualOnly: residualOnly)
        }
        // One file: every tensor, with the `__metadata__` of the tensor file when there is only one.
        let w = try AtomicFileWriter(path: path, overwrite: overwrite)
        let metadata = fileNames.count == 1 ? index.fileMetadata[fileNames[0]] ?? [:] : [:]
        try write(index.tensors, metadata: metadata, to: w)
        try w.commit()
        return Report(outputPath: path, isFolder: false, files: [path], tensorCount: index.tensors.count,
                      bytesWritten: w.bytesWritten, residualOnly: residualOnly, filesLeftOut: index.files.map(\.name))
    }
}

extension AdapterDecompressor {
    /// Decompresses every tensor into one HDF5 file (datasets in groups split at `.`; see ``HDF5Writer``).
    /// Verbatim files such as `adapter_config.json` are not part of an HDF5 output.
    public static func decompressToHDF5(_ reader: ContainerReader, to path: String, dtype override: DType? = nil,
                                        base: Checkpoint? = nil, overwrite: Bool = false) throws -> Report {
        _ = try reader.checkedAdapterConfig()
        var tensors: [LoadedTensor] = []
        for t in reader.index.tensors {
            let outType = (override != nil && t.dtype.isFloatingPoint) ? override! : t.dtype
            if case .exact(let raw) = try reader.payload(t), outType == t.dtype {
                tensors.append(LoadedTensor(name: t.name, dtype: t.dtype, shape: t.shape, data: TensorData(dtype: t.dtype, copying: raw)))
                continue
            }
            var values = [Float](repeating: 0, count: t.count)
            try values.withUnsafeMutableBufferPointer { try reader.decodeValues(t, base: base?.data(t.name), into: $0) }
            var bytes = [UInt8](repeating: 0, count: t.count * outType.byteSize)
            values.withUnsafeBufferPointer { v in bytes.withUnsafeMutableBytes { FloatEncoding.store(v, as: outType, into: $0) } }
            tensors.append(LoadedTensor(name: t.name, dtype: outType, shape: t.shape, data: TensorData(dtype: outType, copying: bytes)))
        }
        try HDF5Writer.write(tensors, to: path, overwrite: overwrite)
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
        let residualOnly = reader.index.tensors.contains { $0.initRule == .base && $0.role == .residual } && base == nil
        return Report(outputPath: path, isFolder: false, files: [path], tensorCount: tensors.count,
                      bytesWritten: size, residualOnly: residualOnly, filesLeftOut: reader.index.files.map(\.name))
    }
}

/// One tensor of a safetensors output: its header fields and a producer that writes exactly its
/// `byteCount` bytes into the buffer it is given.
struct OutputTensor: @unchecked Sendable {
    var name: String
    var dtype: DType
    var shape: [Int]
    var fill: (UnsafeMutableRawBufferPointer) throws -> Void
}

/// Counts finished tensors for a progress callback that may be called from any worker, one call at a time.
final class ProgressCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private let total: Int
    private let report: ((Int, Int) -> Void)?

    init(total: Int, report: ((Int, Int) -> Void)?) {
        self.total = total
        self.report = report
    }

    func finished() {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        report?(done, total)
    }
}

/// A mapped output handed to workers that write disjoint parts of it and release their own pages
/// (``AtomicFileWriter/releaseMapped(_:)`` only reads the mapping, fixed before they start).
private struct SharedRegion: @unchecked Sendable {
    var bytes: UnsafeMutableRawBufferPointer
    var writer: AtomicFileWriter
}

/// Writes a safetensors file. When the output is a file, it is sized and mapped, the header copied in
/// and the tensors decoded straight into their places by `threads` workers (largest first); each
/// tensor's pages are handed back once written, so the resident set stays near the tensors in flight.
/// Standard output (or a file system that cannot reserve space) streams the tensors in order through
/// ``SafeTensorsWriter``, each from a buffer of its own size.
func writeSafeTensors(_ tensors: [OutputTensor], metadata: [String: String], to w: AtomicFileWriter,
                      threads: Int, progress: ProgressCounter) throws {
    let entries = tensors.map { t in
        SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { sink in
            // The shape was validated before any tensor is produced.
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: (checkedElementCount(t.shape) ?? 0) * t.dtype.byteSize,
                                                             alignment: 64)
            defer { out.deallocate() }
            try t.fill(out)
            try sink(UnsafeRawBufferPointer(out))
            progress.finished()
        }
    }
    try SafeTensorsWriter.validate(entries, file: w.path)
    let ordered = SafeTensorsWriter.layoutOrder(entries)
    let header = SafeTensorsWriter.header(for: ordered, metadata: metadata)
    let size = ordered.reduce(header.count) { $0 + $1.byteCount }
    // Zero-byte tensors have no place to map; they and standard output take the streaming path.
    guard entries.allSatisfy({ $0.byteCount > 0 }), let region = try w.mapForWriting(size: size) else {
        try SafeTensorsWriter.write(entries, metadata: metadata, to: w)
        return
    }
    header.withUnsafeBytes { region.copyMemory(from: $0) }
    let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
    var offsets: [(tensor: OutputTensor, range: Range<Int>)] = []
    var offset = header.count
    for entry in ordered {
        offsets.append((byName[entry.name]!, offset..<(offset + entry.byteCount)))
        offset += entry.byteCount
    }
    let order = offsets.indices.sorted { offsets[$0].range.count > offsets[$1].range.count }
    let shared = SharedRegion(bytes: region, writer: w)
    let failures = UnsafeSlots<(any Error)?>(repeating: nil, count: offsets.count)
    let jobs = offsets
    parallelFor(count: order.count, threads: threads) { _, item in
        let (tensor, range) = jobs[order[item]]
        do {
            try tensor.fill(UnsafeMutableRawBufferPointer(rebasing: shared.bytes[range]))
            shared.writer.releaseMapped(range)
            progress.finished()
        } catch {
            failures[order[item]] = error
        }
    }
    if let error = (0..<offsets.count).lazy.compactMap({ failures[$0] }).first { throw error }
}
