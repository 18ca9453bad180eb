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
        // Tensors by output file, as positions in the index (a copy of every entry per file would be a
        // few hundred bytes a tensor).
        var byFile: [String: [Int]] = [:]
        var lastFile: String?
        var lastPositions: [Int] = []
        for (i, t) in index.tensors.enumerated() {
            if t.file != lastFile {
                if let lastFile { byFile[lastFile, default: []] += lastPositions }
                lastFile = t.file
                lastPositions = []
            }
            lastPositions.append(i)
        }
        if let lastFile { byFile[lastFile, default: []] += lastPositions }
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
        // Each tensor's header fields, and one producer that fills exactly the bytes of the tensor at a position.
        let tensors = index.tensors
        @Sendable func outType(_ t: ContainerIndex.Tensor) -> DType { (override != nil && t.dtype.isFloatingPoint) ? override! : t.dtype }
        let fill: @Sendable (Int, UnsafeMutableRawBufferPointer) throws -> Void = { i, out in
            let t = tensors[i]
            let outType = outType(t)
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
        func tensorsOf(_ positions: [Int]) -> [OutputTensor] {
            positions.map { i in OutputTensor(name: tensors[i].name, dtype: outType(tensors[i]), shape: tensors[i].shape, source: i) }
        }
        let counter = ProgressCounter(total: index.tensors.count, report: progress)
        func write(_ positions: [Int], metadata: [String: String], to w: AtomicFileWriter) throws {
            try writeSafeTensors(tensorsOf(positions), fill: fill, metadata: metadata, to: w, threads: threads, progress: counter)
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
        try write(Array(index.tensors.indices), metadata: metadata, to: w)
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

/// One tensor of a safetensors output: its header fields, and which tensor the producer fills it with.
struct OutputTensor {
    var name: String
    var dtype: DType
    var shape: [Int]
    /// What the producer of ``writeSafeTensors(_:fill:metadata:to:threads:progress:)`` is given for it.
    var source: Int

    var byteCount: Int { (checkedElementCount(shape) ?? 0) * dtype.byteSize }
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
///
/// - Parameter fill: writes exactly the bytes of a tensor (given its ``OutputTensor/source``) into the
///   buffer; one closure for all tensors, so that a million tensors are not a million closures.
func writeSafeTensors(_ tensors: [OutputTensor], fill: @escaping @Sendable (Int, UnsafeMutableRawBufferPointer) throws -> Void,
                      metadata: [String: String], to w: AtomicFileWriter, threads: Int, progress: ProgressCounter) throws {
    try SafeTensorsWriter.validate(tensors.lazy.map { ($0.name, $0.shape) }, file: w.path)
    let order = SafeTensorsWriter.layoutOrder(tensors.lazy.map { ($0.name, $0.dtype) })
    let header = SafeTensorsWriter.header(for: order.lazy.map { (tensors[$0].name, tensors[$0].dtype, tensors[$0].shape) },
                                          metadata: metadata)
    let size = tensors.reduce(header.count) { $0 + $1.byteCount }
    // Zero-byte tensors have no place to map; they and standard output take the streaming path.
    guard tensors.allSatisfy({ $0.byteCount > 0 }), let region = try w.mapForWriting(size: size) else {
        let entries = tensors.map { t in
            SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { sink in
                // The shape was validated before any tensor is produced.
                let out = UnsafeMutableRawBufferPointer.allocate(byteCount: t.byteCount, alignment: 64)
                defer { out.deallocate() }
                try fill(t.source, out)
                try sink(UnsafeRawBufferPointer(out))
                progress.finished()
            }
        }
        try SafeTensorsWriter.write(entries, metadata: metadata, to: w)
        return
    }
    header.withUnsafeBytes { region.copyMemory(from: $0) }
    // Where each tensor (in layout order) starts; it ends where the next starts.
    var starts: [Int] = []
    starts.reserveCapacity(order.count + 1)
    var offset = header.count
    for i in order {
        starts.append(offset)
        offset += tensors[i].byteCount
    }
    starts.append(offset)
    let largestFirst = order.indices.sorted { starts[$0 + 1] - starts[$0] > starts[$1 + 1] - starts[$1] }
    let shared = SharedRegion(bytes: region, writer: w)
    let failures = UnsafeSlots<(any Error)?>(repeating: nil, count: order.count)
    let (jobs, layout, positions) = (tensors, order, starts)
    parallelFor(count: largestFirst.count, threads: threads) { _, item in
        let k = largestFirst[item]
        let range = positions[k]..<positions[k + 1]
        do {
            try fill(jobs[layout[k]].source, UnsafeMutableRawBufferPointer(rebasing: shared.bytes[range]))
            shared.writer.releaseMapped(range)
            progress.finished()
        } catch {
            failures[k] = error
        }
    }
    if let error = (0..<order.count).lazy.compactMap({ failures[$0] }).first { throw error }
}
