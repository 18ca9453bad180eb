import AdapterFormat
import Foundation
import TaskVector

/// An open container and what the C side borrows from it: NUL-terminated names and file names (valid
/// until the handle is closed and the last call using it returns) and the index as JSON.
final class OpenContainer: @unchecked Sendable {
    let reader: ContainerReader
    /// The tensor names as C strings, in index order; freed in `deinit`.
    let names: [UnsafeMutablePointer<CChar>]
    /// Each tensor's output file name as a C string, shared between tensors of the same file.
    let files: [UnsafeMutablePointer<CChar>]
    private let uniqueFiles: [UnsafeMutablePointer<CChar>]
    private let indexByName: [String: Int]
    private let metadataLock = PthreadLock()
    /// Guarded by `metadataLock`; encoded on first use (an open that never asks for it, the serving
    /// path, does not pay for encoding the whole index).
    nonisolated(unsafe) private var encodedMetadata: [UInt8]?

    var path: String { reader.path }
    var tensorCount: Int { reader.index.tensors.count }

    init(reader: ContainerReader) throws {
        self.reader = reader
        let tensors = reader.index.tensors
        var byName: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { byName[t.name] = i }
        indexByName = byName
        var fileStrings: [String: UnsafeMutablePointer<CChar>] = [:]
        for t in tensors where fileStrings[t.file] == nil { fileStrings[t.file] = strdup(t.file)! }
        uniqueFiles = Array(fileStrings.values)
        files = tensors.map { fileStrings[$0.file]! }
        names = tensors.map { strdup($0.name)! }
    }

    deinit {
        for p in names { free(p) }
        for p in uniqueFiles { free(p) }
    }

    /// The index as compact JSON, keys sorted.
    func metadataJSON() throws -> [UInt8] {
        try metadataLock.withLock {
            if let encodedMetadata { return encodedMetadata }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let json = Array(try encoder.encode(reader.index))
            encodedMetadata = json
            return json
        }
    }

    /// The entry at a C index, or INVALID_ARGUMENT naming the range.
    func tensor(at index: Int) throws(ABIError) -> ContainerIndex.Tensor {
        guard index >= 0, index < tensorCount else {
            throw .invalidArgument("\(path): tensor index \(UInt(bitPattern: index)) is out of range (the container has \(tensorCount) tensors)")
        }
        return reader.index.tensors[index]
    }

    func index(of name: String) -> Int? { indexByName[name] }

    /// The bytes of the verbatim file called `name`, checked, or nil when there is none.
    func verbatimFile(named name: String) throws -> [UInt8]? {
        guard let f = reader.index.files.first(where: { $0.name == name }) else { return nil }
        return try reader.contents(of: f)
    }
}
