import Foundation

/// One or more safetensors files read as one set of named tensors: a single file, or a sharded
/// checkpoint described by a `*.safetensors.index.json` (`weight_map`: tensor name → shard file).
public struct Checkpoint: Sendable {
    /// The path the user gave.
    public let path: String
    /// The files, with the name each has inside its folder (the shard name).
    public let files: [(name: String, file: SafeTensorsFile)]
    /// The index file's bytes, verbatim, when the checkpoint is sharded.
    public let indexJSON: [UInt8]?
    private let locations: [String: (file: Int, tensor: TensorInfo)]

    /// All tensor names, sorted bytewise (the order ComPEFT concatenates them in).
    public let names: [String]

    /// Opens a `.safetensors` file, a `*.safetensors.index.json`, or a folder holding either
    /// (`model.safetensors.index.json` or exactly one `*.safetensors.index.json`, else `model.safetensors`
    /// or exactly one `*.safetensors`).
    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if path != "-" && !fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            throw TaskVectorError(.io, file: path, "no such file or folder")
        }
        var target = path
        if isDirectory.boolValue {
            let entries = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).sorted()
            let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
            let singles = entries.filter { $0.hasSuffix(".safetensors") }
            if indexes.contains("model.safetensors.index.json") {
                target = path + "/model.safetensors.index.json"
            } else if indexes.count == 1 {
                target = path + "/" + indexes[0]
            } else if singles.contains("model.safetensors") {
                target = path + "/model.safetensors"
            } else if singles.count == 1 {
                target = path + "/" + singles[0]
            } else {
                throw TaskVectorError(.io, file: path, "folder holds no single safetensors checkpoint (found \(singles.count) .safetensors and \(indexes.count) index files)")
            }
        }
        if target.hasSuffix(".index.json") {
            let folder = URL(fileURLWithPath: target).deletingLastPathComponent().path
            let index = try MappedFile(path: target)
            let bytes = Array(index.bytes)
            guard bytes.count <= SafeTensorsFile.maxHeaderLength,
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                let weightMap = object["weight_map"] as? [String: Any]
            else { throw TaskVectorError(.malformed, file: target, "not a safetensors index: needs a JSON object with a \"weight_map\"") }
            var shardNames: [String] = []
            var wanted: [String: String] = [:]
            for (tensor, value) in weightMap {
                guard let shard = value as? String, !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
                    throw TaskVectorError(.malformed, file: target, tensor: tensor, "weight_map entry is not a file name in the index's folder")
                }
                wanted[tensor] = shard
                if !shardNames.contains(shard) { shardNames.append(shard) }
            }
            shardNames.sort()
            var files: [(String, SafeTensorsFile)] = []
            for shard in shardNames { files.append((shard, try SafeTensorsFile(path: folder + "/" + shard))) }
            self.files = files
            indexJSON = bytes
            locations = try Self.locate(files: files, path: target)
            for (tensor, shard) in wanted {
                guard let loc = locations[tensor], files[loc.file].0 == shard else {
                    throw TaskVectorError(.malformed, file: target, tensor: tensor, "index maps it to '\(shard)' but that shard does not hold it")
                }
            }
        } else {
            let file = try SafeTensorsFile(path: target)
            let name = target == "-" ? "model.safetensors" : URL(fileURLWithPath: target).lastPathComponent
            files = [(name, file)]
            indexJSON = nil
            locations = try Self.locate(files: files, path: target)
        }
        names = locations.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    private static func locate(files: [(String, SafeTensorsFile)], path: String) throws -> [String: (file: Int, tensor: TensorInfo)] {
        var result: [String: (file: Int, tensor: TensorInfo)] = [:]
        for (i, (shard, file)) in files.enumerated() {
            for t in file.tensors {
                if let other = result[t.name] {
                    throw TaskVectorError(.malformed, file: path, tensor: t.name, "appears in both '\(files[other.file].0)' and '\(shard)'")
                }
                result[t.name] = (i, t)
            }
        }
        return result
    }

    /// The tensor called `name` and the index of the file holding it.
    public func locate(_ name: String) -> (file: Int, tensor: TensorInfo)? { locations[name] }

    /// Total bytes of the checkpoint's files (shards and index).
    public var byteCount: Int { files.reduce(indexJSON?.count ?? 0) { $0 + $1.file.file.bytes.count } }

    /// A typed view of the tensor called `name`.
    public func data(_ name: String) -> TensorData? {
        guard let loc = locations[name] else { return nil }
        return files[loc.file].file.data(of: loc.tensor)
    }
}
