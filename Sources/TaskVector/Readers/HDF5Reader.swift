#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Reads every dataset of an HDF5 file (Keras `.weights.h5`, h5py output) as tensors, through libhdf5.
///
/// Each dataset reachable from the root group through hard links becomes one tensor, named by its
/// path with the leading `/` dropped and every `/` turned into `.`: `/layers/dense/vars/0` becomes
/// `layers.dense.vars.0`. A dataset linked under several paths is read once, under the first path
/// in name order. Groups, named datatypes and attributes are ignored.
///
/// Nothing outside the file is read: soft and external links are not followed, a dataset whose
/// values live in other files (external storage, a virtual dataset) is refused naming the file it
/// points at, and libhdf5 loads no filter plugins. Groups may nest ``maxDepth`` levels deep; the walk
/// costs time linear in the number of objects, up to ``maxObjects``.
///
/// Values are converted by HDF5 while reading, exactly:
/// - IEEE floats of 16, 32 and 64 bits, in either byte order, become little-endian `F16`, `F32`, `F64`;
///   a 16-bit float with bfloat16's bit layout becomes `BF16`.
/// - Integers of 1, 2, 4 and 8 bytes, signed or not, in either byte order, become `I8`…`U64`.
/// - Every other type (strings, compounds, enums (h5py's `bool`), opaque, references,
///   variable-length, arrays, other float layouts) is refused with ``TaskVectorError/Code/unsupported``,
///   or skipped and listed when `skipUnsupported` is set.
///
/// A scalar dataspace gives a rank-0 tensor. Before any allocation, the reader refuses a rank above
/// ``maxRank``, a shape whose element or byte count overflows, a tensor over ``maxTensorBytes``, and
/// a dataset that declares more than ``maxExpansion`` times the bytes it stores in the file (and more
/// than 16 MiB): compression expands data by at most about 1000×, so such a header is lying, or the
/// dataset was never written.
public enum HDF5Reader {
    /// The largest rank accepted.
    public static let maxRank = 8
    /// The largest tensor accepted, in bytes (1 TiB).
    public static let maxTensorBytes = 1 << 40
    /// The largest accepted ratio of a dataset's bytes to the bytes it occupies in the file.
    public static let maxExpansion = 1100
    /// Datasets up to this size are read even if the file stores fewer bytes for them (fill values).
    static let unbackedAllowance = 16 << 20
    /// The most objects (groups, datasets, named types) a file may hold.
    public static let maxObjects = 1 << 20
    /// The deepest nesting of groups read: a dataset lies at most this many groups below the root
    /// (`/g1/g2/…/g64/x`). Real checkpoints nest a handful of levels; a deeper file is refused.
    public static let maxDepth = 64

    /// Reads every dataset of the HDF5 file at `path`.
    ///
    /// - Returns: the tensors in traversal order (groups and datasets in name order, depth first).
    /// - Throws: ``TaskVectorError``: `.io` when the file cannot be opened, `.malformed` for a file
    ///   that is not HDF5 or whose dataset headers are implausible, `.unsupported` for a dataset of
    ///   a type compeft does not read. Each names the file and, where it applies, the dataset.
    public static func read(path: String) throws -> [LoadedTensor] {
        try read(path: path, skipUnsupported: false).tensors
    }

    /// Reads every dataset of the HDF5 file at `path`, optionally skipping those of unsupported types.
    ///
    /// libhdf5 runs in a separate process, `compeft-hdf5-reader` (``HDF5ReaderProcess``), so that a file
    /// that crashes the library is an error here (`.malformed`, naming the file and the signal), not the
    /// end of this process; `COMPEFT_HDF5_READER=in-process` reads inside this process instead.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - skipUnsupported: skip datasets whose type is not supported, or whose values lie in other
    ///     files, instead of throwing; they are listed in ``HDF5Contents/skipped`` (nothing of them is
    ///     read). Malformed datasets still throw.
    /// - Throws: ``TaskVectorError`` as ``read(path:)``; `.unsupported` also when the helper program is
    ///   not installed (the message says where it was looked for).
    public static func read(path: String, skipUnsupported: Bool) throws -> HDF5Contents {
        try read(path: path, skipUnsupported: skipUnsupported, mode: HDF5ReaderProcess.mode(for: path))
    }

    /// Reads `path` in the helper program at `mode` or in this process.
    package static func read(path: String, skipUnsupported: Bool, mode: HDF5ReaderProcess.Mode) throws -> HDF5Contents {
        switch mode {
        case .inProcess:
            return try readInProcess(path: path, skipUnsupported: skipUnsupported)
        case .helper(let helper):
            // Opened here, so a FIFO or device is refused without blocking and the helper reads the very
            // file that was checked.
            let opened = try RegularFile.openForReading(path)
            defer { close(opened.descriptor) }
            return try HDF5ReaderProcess.read(
                descriptor: opened.descriptor, size: opened.size, path: path, skipUnsupported: skipUnsupported,
                helper: helper)
        }
    }

    /// Reads `path` with libhdf5 inside this process: what the helper program runs (and the fuzzer, to
    /// explore libhdf5 itself). A crafted file can crash libhdf5 and so this process;
    /// ``read(path:skipUnsupported:)`` is the safe way.
    @_spi(InProcess) public static func readInProcess(path: String, skipUnsupported: Bool) throws -> HDF5Contents {
        var tensors: [LoadedTensor] = []
        let skipped = try readInProcess(path: path, skipUnsupported: skipUnsupported) { tensors.append($0) }
        return HDF5Contents(tensors: tensors, skipped: skipped)
    }

    /// Reads `path` in this process, handing each tensor to `emit` as soon as it is read (the helper sends
    /// it on and drops it, so it holds one dataset at a time); returns the datasets skipped.
    static func readInProcess(
        path: String, skipUnsupported: Bool, emit: (LoadedTensor) throws -> Void
    ) throws -> [TaskVectorError] {
        // Open it ourselves first: a FIFO or device is refused without blocking, and libhdf5 then opens
        // the very file that was checked (through /proc/self/fd where there is one), not whatever the
        // path names by then.
        let opened = try RegularFile.openForReading(path)
        defer { close(opened.descriptor) }
        let procPath = "/proc/self/fd/\(opened.descriptor)"
        let openPath = access(procPath, F_OK) == 0 ? procPath : path
        return try HDF5Library.withExclusiveAccess {
            try readLocked(path: path, opening: openPath, skipUnsupported: skipUnsupported, emit: emit)
        }
    }

    private static func readLocked(
        path: String, opening openPath: String, skipUnsupported: Bool, emit: (LoadedTensor) throws -> Void
    ) throws -> [TaskVectorError] {
        guard try hdf5(path, nil, { () throws(HDF5Error) in try HDF5Library.isHDF5(path: openPath) }) else {
            throw TaskVectorError(.malformed, file: path, "not an HDF5 file (no HDF5 signature found)")
        }
        let file = try hdf5(path, nil) { () throws(HDF5Error) in try HDF5Library.openReadOnly(path: openPath) }
        let paths: [String]
        do {
            paths = try HDF5Library.datasetPaths(in: file, objectLimit: maxObjects, depthLimit: maxDepth)
        } catch {
            switch error {
            case .tooManyObjects(let limit):
                throw TaskVectorError(.unsupported, file: path, "holds more than \(limit) objects (groups, datasets, types)")
            case .tooDeep(let group, let limit):
                let shown = group.count > 120 ? String(group.prefix(60)) + "…" + String(group.suffix(60)) : group
                throw TaskVectorError(
                    .unsupported, file: path,
                    "groups nest more than \(limit) levels deep (group '/\(shown)'); compeft reads at most \(limit)")
            case .invalidName(let group):
                throw TaskVectorError(.malformed, file: path, "a link name in group '\(group)' is not valid UTF-8")
            case .library(let failure):
                throw TaskVectorError(hdf5: failure, file: path, tensor: nil)
            }
        }
        var skipped: [TaskVectorError] = []
        var seen: [String: String] = [:]
        for datasetPath in paths {
            let name = datasetPath.split(separator: "/", omittingEmptySubsequences: true).joined(separator: ".")
            if let earlier = seen.updateValue(datasetPath, forKey: name) {
                throw TaskVectorError(
                    .malformed, file: path, tensor: name,
                    "datasets '/\(earlier)' and '/\(datasetPath)' both map to this tensor name")
            }
            let tensor: LoadedTensor
            do {
                tensor = try readDataset(datasetPath, name: name, in: file, path: path)
            } catch let error as TaskVectorError where skipUnsupported && error.code == .unsupported {
                skipped.append(error)
                continue
            }
            try emit(tensor)
        }
        do { try file.close() } catch { throw TaskVectorError(hdf5: error, file: path, tensor: nil) }
        return skipped
    }

    private static func readDataset(
        _ datasetPath: String, name: String, in file: borrowing HDF5Handle, path: String
    ) throws -> LoadedTensor {
        let dataset = try hdf5(path, name) { () throws(HDF5Error) in
            try HDF5Library.openDataset(datasetPath, in: file)
        }
        // Before anything else about the dataset: libhdf5 opens a virtual dataset's sources as soon as
        // its extent is asked for.
        switch try hdf5(path, name, { () throws(HDF5Error) in try HDF5Library.foreignStorage(of: dataset) }) {
        case nil:
            break
        case .external(let other, let count):
            throw TaskVectorError(
                .unsupported, file: path, tensor: name,
                "HDF5 dataset '/\(datasetPath)' keeps its values in external file '\(other)'"
                    + (count > 1 ? " (and \(count - 1) more)" : "")
                    + "; compeft reads only data stored inside the input file")
        case .virtual(let other, let source, let count):
            let where_ = other == "." ? "this file" : "file '\(other)'"
            throw TaskVectorError(
                .unsupported, file: path, tensor: name,
                "HDF5 dataset '/\(datasetPath)' is a virtual dataset mapped onto dataset '\(source)' in \(where_)"
                    + (count > 1 ? " (and \(count - 1) more mappings)" : "")
                    + "; compeft reads only data stored inside the input file")
        }
        let description = try hdf5(path, name) { () throws(HDF5Error) in
            let type = try HDF5Library.datatype(of: dataset)
            return try HDF5Library.describe(type)
        }
        let dtype: DType
        switch description.dtype {
        case .success(let found): dtype = found
        case .failure(let unsupported):
            throw TaskVectorError(
                .unsupported, file: path, tensor: name,
                "HDF5 dataset type \(unsupported.typeName) is not supported; compeft reads integer and IEEE "
                    + "floating-point datasets only (skipUnsupported skips such datasets)")
        }
        let extent = try hdf5(path, name) { () throws(HDF5Error) in
            let space = try HDF5Library.dataspace(of: dataset)
            return try HDF5Library.extent(of: space)
        }
        guard let extent else {
            throw TaskVectorError(
                .unsupported, file: path, tensor: name, "HDF5 dataset has a null dataspace (no values at all)")
        }
        let shape = try validatedShape(extent, path: path, name: name)
        let byteCount = try validatedByteCount(shape, dtype: dtype, path: path, name: name)
        let stored = HDF5Library.storageSize(of: dataset)
        if byteCount > unbackedAllowance, UInt64(byteCount / maxExpansion) > stored {
            throw TaskVectorError(
                .malformed, file: path, tensor: name,
                "dataset declares shape \(shape) (\(byteCount) bytes) but stores only \(stored) bytes in the file, "
                    + "more than \(maxExpansion)× compression could explain; refusing to allocate it")
        }
        let owned = OwnedBytes(zeroedByteCount: byteCount)
        let target = UnsafeMutableRawBufferPointer(rebasing: owned.buffer[0..<byteCount])
        do {
            guard let memoryType = try HDF5Library.littleEndianType(for: dtype) else {
                preconditionFailure("HDF5TypeDescription mapped a dataset to \(dtype), which has no HDF5 type")
            }
            try HDF5Library.read(dataset, as: memoryType, into: target)
            try dataset.close()
        } catch {
            throw TaskVectorError(hdf5: error, file: path, tensor: name)
        }
        let data = TensorData(dtype: dtype, bytes: UnsafeRawBufferPointer(target), owner: owned)
        return LoadedTensor(name: name, dtype: dtype, shape: shape, data: data)
    }

    private static func validatedShape(_ extent: [UInt64], path: String, name: String) throws -> [Int] {
        guard extent.count <= maxRank else {
            throw TaskVectorError(
                .unsupported, file: path, tensor: name, "rank \(extent.count) exceeds the supported \(maxRank)")
        }
        return try extent.map { dim in
            guard let d = Int(exactly: dim) else {
                throw TaskVectorError(.malformed, file: path, tensor: name, "dimension \(dim) is too large")
            }
            return d
        }
    }

    private static func validatedByteCount(_ shape: [Int], dtype: DType, path: String, name: String) throws -> Int {
        guard let count = checkedElementCount(shape),
            case (let bytes, let overflow) = count.multipliedReportingOverflow(by: dtype.byteSize), !overflow,
            bytes <= maxTensorBytes
        else {
            throw TaskVectorError(
                .malformed, file: path, tensor: name,
                "shape \(shape) of \(dtype.rawValue) exceeds the \(maxTensorBytes)-byte limit for one tensor")
        }
        return bytes
    }
}

/// What ``HDF5Reader/read(path:skipUnsupported:)`` found.
public struct HDF5Contents: Sendable {
    /// The datasets read, in traversal order.
    public var tensors: [LoadedTensor]
    /// The datasets skipped for their type, each as the error reading it would have thrown.
    public var skipped: [TaskVectorError]
}

/// Runs an HDF5 step, turning its ``HDF5Error`` into a ``TaskVectorError`` naming the file and dataset.
func hdf5<T: ~Copyable>(_ path: String, _ tensor: String?, _ body: () throws(HDF5Error) -> T) throws(TaskVectorError)
    -> T
{
    do {
        return try body()
    } catch {
        throw TaskVectorError(hdf5: error, file: path, tensor: tensor)
    }
}

extension TaskVectorError {
    /// A failed libhdf5 call on `file` (and `tensor`), as a `.malformed` error quoting HDF5's reason.
    init(hdf5 error: HDF5Error, file: String, tensor: String?) {
        self.init(.malformed, file: file, tensor: tensor, "HDF5: \(error)")
    }
}
