import Foundation
public import TaskVector

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
    }

    /// Whether the container decompresses to a folder (verbatim files or several tensor files).
    public static func writesFolder(_ index: ContainerIndex) -> Bool {
        !index.files.isEmpty || Set(index.tensors.map(\.file)).count > 1
    }

    /// Decompresses `reader` to `path`.
    ///
    /// - Parameters:
    ///   - dtype: write every float tensor in this dtype instead of its original one.
    ///   - base: the base checkpoint, to rebuild a full fine-tune's weights (else its residual is written).
    ///   - overwrite: replace an existing output.
    public static func decompress(_ reader: ContainerReader, to path: String, dtype override: DType? = nil,
                                  base: Checkpoint? = nil, overwrite: Bool = false,
                                  progress: ((Int, Int) -> Void)? = nil) throws -> Report {
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
        var done = 0
        func entries(for tensors: [ContainerIndex.Tensor]) -> [SafeTensorsWriter.Entry] {
            tensors.map { t in
                let outType = (override != nil && t.dtype.isFloatingPoint) ? override! : t.dtype
                return SafeTensorsWriter.Entry(name: t.name, dtype: outType, shape: t.shape) { sink in
                    if ContainerReader.decodableTypes.contains(outType), t.dtype.isFloatingPoint {
                        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: t.count * outType.byteSize, alignment: 16)
                        defer { out.deallocate() }
                        try reader.decode(t, as: outType, into: out, base: base?.data(t.name), residualOnly: t.initRule == .base && base == nil)
                        try sink(UnsafeRawBufferPointer(out))
                    } else if case .exact(let raw) = try reader.payload(t), outType == t.dtype {
                        try raw.withUnsafeBytes { try sink($0) }
                    } else {
                        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.count)
                        defer { values.deallocate() }
                        try reader.decodeValues(t, base: base?.data(t.name), into: values)
                        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: t.count * outType.byteSize, alignment: 16)
                        defer { out.deallocate() }
                        FloatEncoding.store(UnsafeBufferPointer(values), as: outType, into: out)
                        try sink(UnsafeRawBufferPointer(out))
                    }
                    done += 1
                    progress?(done, index.tensors.count)
                }
            }
        }
        var written: UInt64 = 0
        if writesFolder(index) {
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
                try SafeTensorsWriter.write(entries(for: byFile[name]!), metadata: index.fileMetadata[name] ?? [:], to: w)
                try w.commit()
                written += w.bytesWritten
                names.append(name)
            }
            try folder.commit()
            return Report(outputPath: path, isFolder: true, files: names, tensorCount: index.tensors.count,
                          bytesWritten: written, residualOnly: residualOnly)
        }
        let name = fileNames.first ?? "model.safetensors"
        let w = try AtomicFileWriter(path: path, overwrite: overwrite)
        try SafeTensorsWriter.write(entries(for: byFile[name] ?? []), metadata: index.fileMetadata[name] ?? [:], to: w)
        try w.commit()
        return Report(outputPath: path, isFolder: false, files: [path], tensorCount: index.tensors.count,
                      bytesWritten: w.bytesWritten, residualOnly: residualOnly)
    }
}

extension AdapterDecompressor {
    /// Decompresses every tensor into one HDF5 file (datasets in groups split at `.`; see ``HDF5Writer``).
    /// Verbatim files such as `adapter_config.json` are not part of an HDF5 output.
    public static func decompressToHDF5(_ reader: ContainerReader, to path: String, dtype override: DType? = nil,
                                        base: Checkpoint? = nil, overwrite: Bool = false) throws -> Report {
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
                      bytesWritten: size, residualOnly: residualOnly)
    }
}
