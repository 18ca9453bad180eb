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

    /// Compresses and appends one payload; returns (offset, length, raw length, hash hex).
    private func append(raw: UnsafeRawBufferPointer, what: String) throws -> (Int, Int, Int, String) {
        let stored: [UInt8]
        do {
            stored = try Zstd.compress(raw, level: level)
        } catch {
            throw FormatError(.io, file: out.path, tensor: what, "\(error)")
        }
        let start = offset
        try out.write(stored)
        offset += stored.count
        return (start, stored.count, raw.count, XXH64.hex(XXH64.hash(stored)))
    }

    /// Appends a verbatim file (restored byte-for-byte on decompression).
    public func addFile(name: String, bytes: [UInt8]) throws {
        let (o, l, r, h) = try bytes.withUnsafeBytes { try append(raw: $0, what: name) }
        files.append(.init(name: name, offset: o, length: l, rawLength: r, xxh64: h))
    }

    /// Appends a tensor payload whose raw bytes are `raw`; fills in the entry's location and checksum.
    public func addTensor(_ entry: ContainerIndex.Tensor, raw: UnsafeRawBufferPointer) throws {
        var e = entry
        (e.offset, e.length, e.rawLength, e.xxh64) = try append(raw: raw, what: entry.name)
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
