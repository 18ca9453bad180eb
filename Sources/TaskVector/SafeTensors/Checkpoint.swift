import Foundation

/// A set of named tensors read from one input, whatever its format: a safetensors file, a sharded
/// safetensors checkpoint (`*.safetensors.index.json`), an HDF5 file (`.h5`), or a PyTorch
/// `torch.save` file (`.bin`, `.pt`, `.pth`).
///
/// Safetensors data stays memory-mapped; HDF5 and PyTorch tensors are read into memory by their readers.
public struct Checkpoint: Sendable {
    /// The file formats compeft reads.
    public enum Format: String, Sendable {
        case safetensors
        case hdf5
        case torch
    }

    /// One tensor and the file it came from.
    public struct Entry: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Name of the file (shard) inside the checkpoint that holds it.
        public var fileName: String
        public var data: TensorData

        public init(name: String, dtype: DType, shape: [Int], fileName: String, data: TensorData) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.fileName = fileName
            self.data = data
        }
    }

    /// The path the user gave.
    public let path: String
    public let format: Format
    /// Names of the files (shards), sorted.
    public let fileNames: [String]
    /// Full paths of the files read.
    public let sourcePaths: [String]
    /// `__metadata__` of each safetensors file that has one, by file name.
    public let fileMetadata: [String: [String: String]]
    /// The index file's name and bytes, verbatim, when the checkpoint is sharded.
    public let index: (name: String, bytes: [UInt8])?
    /// Total bytes of the files read.
    public let byteCount: Int
    /// All tensor names, sorted bytewise (the order ComPEFT concatenates them in).
    public let names: [String]
    private let entries: [String: Entry]

    /// Opens `path`: a file of one of the supported formats, a `*.safetensors.index.json`, or a folder
    /// holding exactly one checkpoint (`model.safetensors.index.json` or one `*.safetensors.index.json`;
    /// else `model.safetensors` or one `*.safetensors`; else one `*.bin` or one `*.h5`). `-` reads a
    /// safetensors file from standard input.
    public init(path: String) throws {
        self.path = path
        let target = try Self.resolve(path)
        var entries: [String: Entry] = [:]
        // The names in file order, to sort: a file's order has long sorted runs, the dictionary's none.
        var inFileOrder: [String] = []
        var metadata: [String: [String: String]] = [:]
        var sources: [String] = []
        var bytes = 0
        func add(_ e: Entry) throws {
            if let other = entries.updateValue(e, forKey: e.name) {
                throw TaskVectorError(.malformed, file: path, tensor: e.name, "appears in both '\(other.fileName)' and '\(e.fileName)'")
            }
            inFileOrder.append(e.name)
        }
        let lower = target.lowercased()
        if lower.hasSuffix(".index.json") {
            format = .safetensors
            let folder = URL(fileURLWithPath: target).deletingLastPathComponent().path
            let indexFile = try MappedFile(path: target)
            let indexBytes = Array(indexFile.bytes)
            guard indexBytes.count <= SafeTensorsFile.maxHeaderLength,
                let object = try? JSONSerialization.jsonObject(with: Data(indexBytes)) as? [String: Any],
                let weightMap = object["weight_map"] as? [String: Any]
            else { throw TaskVectorError(.malformed, file: target, "not a safetensors index: needs a JSON object with a \"weight_map\"") }
            var wanted: [String: String] = [:]
            for (tensor, value) in weightMap {
                guard let shard = value as? String, Self.isPlainFileName(shard) else {
                    throw TaskVectorError(.malformed, file: target, tensor: tensor,
                                          "weight_map entry \(Self.quoted(value)) is not a file name in the index's folder; "
                                              + "shards must sit beside the index (no '/', '..' or absolute paths)")
                }
                wanted[tensor] = shard
            }
            let shards = Set(wanted.values).sorted()
            for shard in shards {
                let file = try SafeTensorsFile(path: folder + "/" + shard)
                if !file.metadata.isEmpty { metadata[shard] = file.metadata }
                sources.append(file.path)
                bytes += file.file.bytes.count
                for t in file.tensors {
                    try add(Entry(name: t.name, dtype: t.dtype, shape: t.shape, fileName: shard, data: file.data(of: t)))
                }
            }
            for (tensor, shard) in wanted where entries[tensor]?.fileName != shard {
                throw TaskVectorError(.malformed, file: target, tensor: tensor, "index maps it to '\(shard)' but that shard does not hold it")
            }
            fileNames = shards
            index = (URL(fileURLWithPath: target).lastPathComponent, indexBytes)
            bytes += indexBytes.count
        } else if let (readerFormat, read) = Self.inMemoryReader(for: lower) {
            // HDF5 and torch.save files are read into memory by their readers.
            format = readerFormat
            let name = URL(fileURLWithPath: target).lastPathComponent
            for t in try read(target) {
                try add(Entry(name: t.name, dtype: t.dtype, shape: t.shape, fileName: name, data: t.data))
            }
            fileNames = [name]
            index = nil
            sources = [target]
            bytes = Self.fileSize(target)
        } else {
            format = .safetensors
            let file = try SafeTensorsFile(path: target)
            let name = target == "-" ? "model.safetensors" : URL(fileURLWithPath: target).lastPathComponent
            if !file.metadata.isEmpty { metadata[name] = file.metadata }
            entries.reserveCapacity(file.tensors.count)
            inFileOrder.reserveCapacity(file.tensors.count)
            for t in file.tensors {
                try add(Entry(name: t.name, dtype: t.dtype, shape: t.shape, fileName: name, data: file.data(of: t)))
            }
            fileNames = [name]
            index = nil
            sources = [file.path]
            bytes = file.file.bytes.count
        }
        self.entries = entries
        fileMetadata = metadata
        sourcePaths = sources
        byteCount = bytes
        names = inFileOrder.sorted { $0.utf8Precedes($1) }
    }

    /// Whether `name` names a file directly inside a folder: not empty, not `.` or `..`, and free of
    /// `/` and NUL, so it can neither climb out of the folder nor name an absolute path or a device.
    ///
    /// A shard may still be a symbolic link (Hugging Face's cache links every file to a blob elsewhere);
    /// what it resolves to must be a regular file, as every file compeft opens must.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0)
    }

    /// A JSON value for an error message, shortened.
    private static func quoted(_ value: Any) -> String {
        guard let text = value as? String else { return "(not a string)" }
        let escaped = text.replacingOccurrences(of: "\u{0}", with: "\\0")
        return "'" + (escaped.count > 80 ? String(escaped.prefix(80)) + "…" : escaped) + "'"
    }

    /// The file a path names, looking inside a folder for its one checkpoint.
    static func resolve(_ path: String) throws -> String {
        guard path != "-" else { return path }
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TaskVectorError(.io, file: path, "no such file or folder")
        }
        guard isDirectory.boolValue else { return path }
        let entries = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
        let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
        let singles = entries.filter { $0.hasSuffix(".safetensors") }
        let bins = entries.filter { $0.hasSuffix(".bin") && !$0.hasPrefix("training_args") }
        let h5 = entries.filter { $0.hasSuffix(".h5") || $0.hasSuffix(".hdf5") }
        if indexes.contains("model.safetensors.index.json") { return path + "/model.safetensors.index.json" }
        if indexes.count == 1 { return path + "/" + indexes[0] }
        if singles.contains("model.safetensors") { return path + "/model.safetensors" }
        if singles.count == 1 { return path + "/" + singles[0] }
        if singles.isEmpty && indexes.isEmpty && bins.count == 1 { return path + "/" + bins[0] }
        if singles.isEmpty && indexes.isEmpty && bins.isEmpty && h5.count == 1 { return path + "/" + h5[0] }
        throw TaskVectorError(.io, file: path, "folder holds no single checkpoint (found \(singles.count) .safetensors, \(indexes.count) index, \(bins.count) .bin and \(h5.count) .h5 files)")
    }

    /// The reader for a file that is not safetensors, chosen by its (lowercased) name.
    private static func inMemoryReader(for lowercasedPath: String) -> (Format, (String) throws -> [LoadedTensor])? {
        if lowercasedPath.hasSuffix(".h5") || lowercasedPath.hasSuffix(".hdf5") {
            return (.hdf5, { try HDF5Reader.read(path: $0) })
        }
        if lowercasedPath.hasSuffix(".bin") || lowercasedPath.hasSuffix(".pt") || lowercasedPath.hasSuffix(".pth") {
            return (.torch, { try TorchBinReader.read(path: $0) })
        }
        return nil
    }

    private static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// The tensor called `name`.
    public func entry(_ name: String) -> Entry? { entries[name] }

    /// A typed view of the tensor called `name`.
    public func data(_ name: String) -> TensorData? { entries[name]?.data }
}
