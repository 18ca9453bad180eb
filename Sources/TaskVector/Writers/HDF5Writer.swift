/// Writes tensors as the datasets of a new HDF5 file, through libhdf5.
///
/// Naming: each tensor name is split at every `.`; all parts but the last are nested groups and the
/// last names the dataset, so `layers.dense.kernel:0` is written as `/layers/dense/kernel:0` and
/// ``HDF5Reader`` reads it back under the same name. Every part must be non-empty and free of `/`,
/// no name may be another's group path (`a.b` beside `a.b.c`), and none may nest deeper than
/// ``HDF5Reader/maxDepth`` groups (what compeft writes, it reads back): all are refused before
/// anything is written.
///
/// Types: `F16`, `F32` and `F64` are written as little-endian IEEE floats (for `F16` a custom type
/// with IEEE binary16's layout, as h5py writes `float16`); `BF16` is widened exactly to `F32` and
/// written as `F32`, because HDF5 tools have no common bfloat16 type (the dtype does not survive a
/// round trip, the values do). Integers are written as little-endian standard integers of the same
/// width and signedness. `BOOL` and the 8-bit floats are refused. Datasets are contiguous and
/// uncompressed.
///
/// libhdf5 writes the file under a temporary name `.<name>.compeft-XXXXXX` in the destination's
/// folder (made by ``AtomicFileWriter``), which is then synced and renamed into place, so a failure
/// never leaves a partial file at `path`. libhdf5 opens files by their real path, so this temporary
/// has a name even where other outputs are unnamed until complete: the `compeft` command removes it
/// on SIGINT, SIGTERM and SIGHUP, but a process killed outright leaves it.
public enum HDF5Writer {
    /// Writes `tensors` to a new HDF5 file at `path`.
    ///
    /// - Parameters:
    ///   - tensors: the tensors; their names must be distinct and follow the naming rule above.
    ///   - path: the destination file.
    ///   - overwrite: replace an existing file at `path`; otherwise an existing file is an error.
    /// - Throws: ``TaskVectorError`` naming the file and tensor: `.unsupported` for a dtype or name
    ///   that cannot be written, `.mismatch` when a tensor's byte count disagrees with its shape,
    ///   `.io` or `.malformed` when writing fails.
    public static func write(_ tensors: [LoadedTensor], to path: String, overwrite: Bool) throws {
        let datasetPaths = try validate(tensors, path: path)
        let output = try AtomicFileWriter(path: path, overwrite: overwrite, named: true)
        guard let temporary = output.temporaryFilePath else {
            throw TaskVectorError(.unsupported, file: path, "HDF5 cannot be written to standard output; give a file path")
        }
        do {
            try HDF5Library.withExclusiveAccess {
                try writeLocked(tensors, datasetPaths: datasetPaths, to: temporary, reportingAs: path)
            }
        } catch {
            output.abandon()
            throw error
        }
        try output.commit()
    }

    /// Checks names, dtypes and byte counts; returns each tensor's dataset path.
    private static func validate(_ tensors: [LoadedTensor], path: String) throws -> [String] {
        var datasets: Set<String> = []
        var groups: Set<String> = []
        var paths: [String] = []
        paths.reserveCapacity(tensors.count)
        for tensor in tensors {
            let name = tensor.name
            let parts = name.split(separator: ".", omittingEmptySubsequences: false)
            guard !parts.contains(where: { $0.isEmpty || $0.contains("/") }) else {
                throw TaskVectorError(
                    .unsupported, file: path, tensor: name,
                    "cannot be written to HDF5: every '.'-separated part of the name must be non-empty and free of '/'")
            }
            guard parts.count - 1 <= HDF5Reader.maxDepth else {
                throw TaskVectorError(
                    .unsupported, file: path, tensor: name,
                    "cannot be written to HDF5: its \(parts.count) name parts would put the dataset more than "
                        + "\(HDF5Reader.maxDepth) groups deep, deeper than compeft reads")
            }
            let datasetPath = parts.joined(separator: "/")
            guard datasets.insert(datasetPath).inserted else {
                throw TaskVectorError(.mismatch, file: path, tensor: name, "appears twice")
            }
            for end in parts.indices.dropLast() {
                groups.insert(parts[...end].joined(separator: "/"))
            }
            guard tensor.dtype == tensor.data.dtype else {
                throw TaskVectorError(
                    .mismatch, file: path, tensor: name,
                    "dtype \(tensor.dtype.rawValue) disagrees with its data's \(tensor.data.dtype.rawValue)")
            }
            if tensor.dtype == .bool || tensor.dtype == .f8e4m3 || tensor.dtype == .f8e5m2 {
                throw TaskVectorError(
                    .unsupported, file: path, tensor: name, "dtype \(tensor.dtype.rawValue) cannot be written to HDF5")
            }
            guard let count = checkedElementCount(tensor.shape),
                case (let bytes, let overflow) = count.multipliedReportingOverflow(by: tensor.dtype.byteSize),
                !overflow,
                bytes == tensor.data.bytes.count
            else {
                throw TaskVectorError(
                    .mismatch, file: path, tensor: name,
                    "shape \(tensor.shape) of \(tensor.dtype.rawValue) disagrees with its \(tensor.data.bytes.count) bytes"
                )
            }
            paths.append(datasetPath)
        }
        if let clash = paths.first(where: { groups.contains($0) }) {
            let name = clash.split(separator: "/").joined(separator: ".")
            throw TaskVectorError(
                .mismatch, file: path, tensor: name,
                "is both a tensor and the group of another tensor ('\(name).…'); HDF5 cannot hold both")
        }
        return paths
    }

    private static func writeLocked(
        _ tensors: [LoadedTensor], datasetPaths: [String], to temporary: String, reportingAs path: String
    ) throws {
        let file = try hdf5(path, nil) { () throws(HDF5Error) in try HDF5Library.createTruncating(path: temporary) }
        for (tensor, datasetPath) in zip(tensors, datasetPaths) {
            try writeDataset(tensor, at: datasetPath, in: file, path: path)
        }
        do { try file.close() } catch { throw TaskVectorError(hdf5: error, file: path, tensor: nil) }
    }

    private static func writeDataset(
        _ tensor: LoadedTensor, at datasetPath: String, in file: borrowing HDF5Handle, path: String
    ) throws {
        let stored: DType = tensor.dtype == .bf16 ? .f32 : tensor.dtype
        var source = tensor.data.bytes
        var widened: UnsafeMutableBufferPointer<Float>?
        defer { widened?.deallocate() }
        if tensor.dtype == .bf16 {
            let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: tensor.data.count)
            widened = floats
            tensor.data.loadFloats(from: 0, into: floats)
            source = UnsafeRawBufferPointer(floats)
        }
        do {
            guard let type = try HDF5Library.littleEndianType(for: stored) else {
                preconditionFailure("validate() let through \(stored), which has no HDF5 type")
            }
            let space = try HDF5Library.createDataspace(shape: tensor.shape)
            let dataset = try HDF5Library.createDataset(datasetPath, in: file, type: type, space: space)
            try HDF5Library.write(dataset, as: type, from: source)
            try dataset.close()
        } catch {
            throw TaskVectorError(hdf5: error, file: path, tensor: tensor.name)
        }
    }
}
