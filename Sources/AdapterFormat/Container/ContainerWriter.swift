import Foundation
public import TaskVector

/// Writes a container front to back: preamble, payloads as they come, then the index and trailer.
/// Nothing is seeked, so the destination can be a pipe.
public final class ContainerWriter {
    private let out: AtomicFileWriter
    private let level: Int32
    private var offset: Int
    private let preamble: [UInt8]
    public private(set) var tensors: [ContainerIndex.Tensor] = []
    public private(set) var files: [ContainerIndex.File] = []

    /// - Parameter level: the zstd level for payloads and the index.
    public init(output: AtomicFileWriter, zstdLevel: Int32 = 19) throws {
        out = output
        level = zstdLevel
        preamble = ContainerLayout.preamble()
        try out.write(preamble)
        offset = preamble.count
    }

    /// Compresses a payload's raw bytes into one zstd frame (safe to call from any thread).
    public static func compress(_ raw: UnsafeRawBufferPointer, level: Int32, file: String, what: String?) throws -> [UInt8] {
        do {
            return try Zstd.compress(raw, level: level)
        } catch {
            throw FormatError(.io, file: file, tensor: what, "\(error)")
        }
    }

    /// The zstd level this writer uses.
    public var zstdLevel: Int32 { level }

    /// Appends stored bytes; returns (offset, length, hash hex).
    private func append(stored: [UInt8]) throws -> (Int, Int, String) {
        let start = offset
        try out.write(stored)
        offset += stored.count
        return (start, stored.count, XXH64.hex(XXH64.hash(stored)))
    }

    /// Appends a verbatim file (restored byte-for-byte on decompression).
    public func addFile(name: String, bytes: [UInt8]) throws {
        let stored = try bytes.withUnsafeBytes { try Self.compress($0, level: level, file: out.path, what: name) }
        let (o, l, h) = try append(stored: stored)
        files.append(.init(name: name, offset: o, length: l, rawLength: bytes.count, xxh64: h))
    }

    /// Appends a tensor payload whose raw bytes are `raw`; fills in the entry's location and checksum.
    public func addTensor(_ entry: ContainerIndex.Tensor, raw: UnsafeRawBufferPointer) throws {
        let stored = try Self.compress(raw, level: level, file: out.path, what: entry.name)
        try addTensor(entry, stored: stored, rawLength: raw.count)
    }

    /// Appends an already compressed payload (see ``compress(_:level:file:what:)``).
    public func addTensor(_ entry: ContainerIndex.Tensor, stored: [UInt8], rawLength: Int) throws {
        var e = entry
        (e.offset, e.length, e.xxh64) = try append(stored: stored)
        e.rawLength = rawLength
        tensors.append(e)
    }

    /// Writes the index and trailer and commits the output.
    public func finish(index template: ContainerIndex) throws {
        var index = template
        index.tensors = tensors
        index.files = files
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = try [UInt8](encoder.encode(index))
        let stored: [UInt8]
        do {
            stored = try json.withUnsafeBytes { try Zstd.compress($0, level: level) }
        } catch {
            throw FormatError(.io, file: out.path, "\(error)")
        }
        let trailer = ContainerLayout.trailer(
            .init(indexOffset: UInt64(offset), indexLength: UInt64(stored.count), indexRawLength: UInt64(json.count),
                  indexHash: XXH64.hash(stored)),
            preamble: preamble)
        try out.write(stored)
        try out.write(trailer)
        try out.commit()
    }
}
