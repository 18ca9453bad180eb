/// Reads a PyTorch `.bin` / `.pt` file written by `torch.save` (the zip format of PyTorch 1.6 and
/// later), such as a PEFT `adapter_model.bin`, without Python and without executing anything.
///
/// The archive holds `<archive>/data.pkl`, a pickle of the saved object, and one stored entry
/// `<archive>/data/<key>` per storage. The pickle is read by a restricted unpickler that knows only
/// the opcodes and globals a state dict needs (see ``TorchUnpickler``); anything else, such as a
/// pickle reducing `os.system`, is refused before any tensor is produced.
///
/// The saved object must be a dict (or `OrderedDict`). Its tensors become ``LoadedTensor``s named
/// by their keys; nested dicts, lists and tuples contribute their keys or indices, joined with `.`
/// (`{"model": {"w": t}}` gives `model.w`). Values that are not tensors (an `epoch` int, a name
/// string) are skipped and listed in ``TorchBinContents/ignored``. Names that collide after
/// joining are an error.
///
/// Every tensor must be a contiguous row-major view (strides of size-1 dimensions do not matter);
/// its `storage_offset` plus element count must lie inside its storage, and each storage entry
/// must hold exactly the element count its persistent id declares. Tensor data is a zero-copy view
/// into the memory-mapped file (tensors sharing a storage share bytes); each storage's CRC-32 is
/// checked once. Storages must be little-endian (`byteorder` absent or `little`).
public enum TorchBinReader {
    /// The deepest nesting of dicts, lists and tuples accepted (also what stops a cyclic pickle).
    public static let maxNesting = 32
    /// The most values (tensors and others) a file may hold.
    public static let maxValues = 1 << 22

    /// Reads the tensors of the `torch.save` archive at `path`.
    ///
    /// - Throws: ``TaskVectorError`` naming the file (and tensor where there is one): `.io` if the
    ///   file cannot be opened, `.malformed` for a broken archive, pickle or tensor, `.unsupported`
    ///   for a global, opcode, storage type or layout compeft refuses.
    public static func read(path: String) throws -> [LoadedTensor] {
        try load(path: path).tensors
    }

    /// Reads the `torch.save` archive at `path`, reporting the non-tensor values skipped.
    public static func load(path: String) throws -> TorchBinContents {
        try load(file: MappedFile(path: path))
    }

    /// Reads a `torch.save` archive already mapped.
    public static func load(file: MappedFile) throws -> TorchBinContents {
        let path = file.path
        let archive: ZipArchive
        do {
            archive = try ZipArchive(file: file)
        } catch let error as TaskVectorError {
            // torch.save before 1.6 wrote a bare pickle stream (protocol 2, starting 0x80 0x02).
            if file.bytes.count >= 2, file.bytes[0] == 0x80, file.bytes[1] == 0x02 {
                throw TaskVectorError(
                    .unsupported, file: path,
                    "legacy torch.save format (PyTorch before 1.6) is not supported; load it in PyTorch and save again")
            }
            throw error
        }

        let pickles = archive.entries.filter { entry in
            entry.name.hasSuffix("/data.pkl") && entry.name.utf8.count(where: { $0 == UInt8(ascii: "/") }) == 1
        }
        guard pickles.count == 1 else {
            throw TaskVectorError(
                .malformed, file: path,
                pickles.isEmpty
                    ? "ZIP archive has no '<archive>/data.pkl' entry; not a torch.save file"
                    : "ZIP archive has \(pickles.count) '<archive>/data.pkl' entries")
        }
        let prefix = String(pickles[0].name.dropLast("data.pkl".count))
        if let order = archive.entry(named: prefix + "byteorder") {
            let text = String(decoding: try archive.data(of: order), as: UTF8.self)
            guard text == "little" else {
                throw TaskVectorError(
                    .unsupported, file: path, "storages are '\(text)'-endian; only little-endian is supported")
            }
        }

        let arena = PickleArena()
        return try withExtendedLifetime(arena) {
            let root = try TorchUnpickler.unpickle(try archive.data(of: pickles[0]), path: path, arena: arena)
            guard case .dict = root else {
                throw TaskVectorError(
                    .unsupported, file: path,
                    "torch.save stored a \(root.typeName); compeft reads a dict of name → tensor")
            }
            var flattener = Flattener(archive: archive, prefix: prefix)
            try flattener.visit(root, name: nil, depth: 0)
            return TorchBinContents(tensors: flattener.tensors, ignored: flattener.ignored)
        }
    }

    /// Walks the unpickled dict, turning tensor references into checked views of their storages.
    private struct Flattener {
        let archive: ZipArchive
        let prefix: String
        var tensors: [LoadedTensor] = []
        var ignored: [String] = []
        var names: Set<String> = []
        var visited = 0
        var storages: [String: (reference: TorchStorageReference, bytes: UnsafeRawBufferPointer)] = [:]

        var path: String { archive.path }

        init(archive: ZipArchive, prefix: String) {
            self.archive = archive
            self.prefix = prefix
        }

        mutating func visit(_ value: PickleValue, name: String?, depth: Int) throws {
            visited += 1
            guard visited <= TorchBinReader.maxValues else {
                throw TaskVectorError(.malformed, file: path, "holds more than \(TorchBinReader.maxValues) values")
            }
            guard depth <= TorchBinReader.maxNesting else {
                throw TaskVectorError(
                    .malformed, file: path, tensor: name,
                    "nests deeper than \(TorchBinReader.maxNesting) levels (or refers to itself)")
            }
            func child(_ key: String) -> String { name.map { "\($0).\(key)" } ?? key }
            switch value {
            case .dict(let dict):
                for (key, item) in zip(dict.keys, dict.values) {
                    try visit(item, name: child(key.description), depth: depth + 1)
                }
            case .list(let list):
                for (i, item) in list.items.enumerated() { try visit(item, name: child(String(i)), depth: depth + 1) }
            case .tuple(let items, _):
                for (i, item) in items.enumerated() { try visit(item, name: child(String(i)), depth: depth + 1) }
            case .tensor(let reference):
                let name = name ?? ""
                guard names.insert(name).inserted else {
                    throw TaskVectorError(.malformed, file: path, tensor: name, "two values map to this tensor name")
                }
                tensors.append(try tensor(reference, name: name))
            default:
                ignored.append(name ?? "")
            }
        }

        private mutating func tensor(_ reference: TorchTensorReference, name: String) throws -> LoadedTensor {
            func fail(_ code: TaskVectorError.Code, _ message: String) -> TaskVectorError {
                TaskVectorError(code, file: path, tensor: name, message)
            }
            let storage = reference.storage
            let dtype = storage.dtype
            let shape = reference.shape
            guard shape.count == reference.stride.count else {
                throw fail(.malformed, "size \(shape) and stride \(reference.stride) differ in rank")
            }
            guard let count = checkedElementCount(shape) else {
                throw fail(.malformed, "size \(shape) overflows or has a negative dimension")
            }
            guard isContiguous(shape: shape, stride: reference.stride) else {
                throw fail(
                    .unsupported,
                    "is not contiguous (size \(shape), stride \(reference.stride)); save tensor.contiguous() instead")
            }
            let bytes = try storageBytes(storage, tensor: name)
            let offset = reference.storageOffset
            guard offset >= 0, count <= storage.elementCount, offset <= storage.elementCount - count else {
                throw fail(
                    .malformed,
                    "storage_offset \(offset) + \(count) elements lies outside its storage '\(storage.key)' "
                        + "of \(storage.elementCount) elements")
            }
            let start = offset * dtype.byteSize
            let view = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count * dtype.byteSize)])
            return LoadedTensor(
                name: name, dtype: dtype, shape: shape, data: TensorData(dtype: dtype, bytes: view, owner: archive.file)
            )
        }

        /// The bytes of `<archive>/data/<key>`, checked once against the element count the pickle declares.
        private mutating func storageBytes(_ storage: TorchStorageReference, tensor: String) throws
            -> UnsafeRawBufferPointer
        {
            if let cached = storages[storage.key] {
                guard cached.reference == storage else {
                    throw TaskVectorError(
                        .malformed, file: path, tensor: tensor,
                        "storage '\(storage.key)' is declared again with a different type, size or location")
                }
                return cached.bytes
            }
            let entryName = prefix + "data/" + storage.key
            guard let entry = archive.entry(named: entryName) else {
                throw TaskVectorError(.malformed, file: path, tensor: tensor, "storage entry '\(entryName)' is missing")
            }
            let (needed, overflow) = storage.elementCount.multipliedReportingOverflow(by: storage.dtype.byteSize)
            guard !overflow, needed == entry.uncompressedSize else {
                throw TaskVectorError(
                    .malformed, file: path, tensor: tensor,
                    "storage '\(storage.key)' declares \(storage.elementCount) \(storage.dtype.rawValue) elements "
                        + "but its entry holds \(entry.uncompressedSize) bytes")
            }
            let bytes = try archive.data(of: entry)
            storages[storage.key] = (storage, bytes)
            return bytes
        }
    }

    /// Whether `stride` is the row-major stride of `shape`, ignoring dimensions of size 1 (and any
    /// stride when there are no elements), as `torch.Tensor.is_contiguous` decides.
    static func isContiguous(shape: [Int], stride: [Int]) -> Bool {
        if shape.contains(0) { return true }
        var expected = 1
        for (size, step) in zip(shape, stride).reversed() where size != 1 {
            guard step == expected else { return false }
            expected *= size  // cannot overflow: checkedElementCount(shape) succeeded
        }
        return true
    }
}

/// What ``TorchBinReader/load(path:)`` found.
public struct TorchBinContents: Sendable {
    /// The tensors, in the order the pickle lists them.
    public var tensors: [LoadedTensor]
    /// Names of the values that were not tensors (numbers, strings, `None`) and were skipped.
    public var ignored: [String]
}
