import Foundation
public import TaskVector

/// Writes a format 1.1 container front to back into a ``ByteSink``: preamble, payloads as they come,
/// then the index and trailer. Nothing is seeked, so the sink can be a file, memory, a pipe or a counter.
///
/// Payloads lie back to back in the order they are added — verbatim files stored as payloads first,
/// then tensors in increasing name order — so the index needs no offsets (docs/FORMAT.md).
public final class ContainerWriter {
    private let out: any ByteSink
    private let level: Int32
    private var offset: Int
    private let preamble: [UInt8]
    /// The tensors and verbatim files added so far, in the JSON form (offsets absolute); ``finish(index:)``
    /// lets the tensors go.
    public private(set) var tensors: [ContainerIndex.Tensor] = []
    public private(set) var files: [ContainerIndex.File] = []
    /// Contents of the files kept for the index.
    private var inlineFiles: [String: [UInt8]] = [:]

    /// Verbatim files up to this size are stored inside the index, compressed with it; larger ones (a
    /// tokenizer) get a payload of their own, so opening the container does not decompress them.
    public static let inlineFileLimit = 256 << 10

    /// Writes the preamble.
    ///
    /// - Parameter zstdLevel: the zstd level for payloads and the index.
    /// - Throws: what the sink throws.
    public init(output: any ByteSink, zstdLevel: Int32 = 19) throws {
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

    /// Appends stored bytes; returns their offset, length and checksum (the low 32 bits of their XXH64).
    private func append(stored: [UInt8]) throws -> (Int, Int, String) {
        let start = offset
        try out.write(stored)
        offset += stored.count
        return (start, stored.count, ContainerIndex.hex32(UInt32(truncatingIfNeeded: XXH64.hash(stored))))
    }

    /// Adds a verbatim file (restored byte for byte on decompression): inside the index when it is at
    /// most ``inlineFileLimit`` bytes, else as a payload.
    ///
    /// - Precondition: no tensor added yet (file payloads come first), and no file of this name.
    public func addFile(name: String, bytes: [UInt8]) throws {
        precondition(!files.contains { $0.name == name }, "file '\(name)' added twice")
        if bytes.count <= Self.inlineFileLimit {
            inlineFiles[name] = bytes
            files.append(.init(name: name, offset: 0, length: 0, rawLength: bytes.count, xxh64: nil, inline: true))
            return
        }
        precondition(tensors.isEmpty, "a verbatim file stored as a payload must be added before the tensors")
        let stored = try bytes.withUnsafeBytes { try Self.compress($0, level: level, file: out.name, what: name) }
        let (o, l, h) = try append(stored: stored)
        files.append(.init(name: name, offset: o, length: l, rawLength: bytes.count, xxh64: h))
    }

    /// Appends a tensor payload whose raw bytes are `raw`; fills in the entry's location and checksum.
    public func addTensor(_ entry: ContainerIndex.Tensor, raw: UnsafeRawBufferPointer) throws {
        let stored = try Self.compress(raw, level: level, file: out.name, what: entry.name)
        try addTensor(entry, stored: stored, rawLength: raw.count)
    }

    /// Appends an already compressed payload (see ``compress(_:level:file:what:)``).
    ///
    /// - Throws: ``FormatError`` when `entry`'s name does not come after the previous tensor's
    ///   (bytewise): the index lists tensors, and their payloads lie, in name order; or when its shape,
    ///   encoding or counts are negative (the rest is checked when the index is read back by ``finish(index:)``).
    public func addTensor(_ entry: ContainerIndex.Tensor, stored: [UInt8], rawLength: Int) throws {
        if let last = tensors.last, !last.name.utf8Precedes(entry.name) {
            throw FormatError(.malformed, file: out.name, tensor: entry.name,
                              "tensors must be added in increasing name order (bytewise); it comes after '\(last.name)'")
        }
        guard entry.shape.allSatisfy({ $0 >= 0 }), entry.encoding >= 0, entry.nonzero >= 0, entry.kept >= entry.nonzero else {
            throw FormatError(.malformed, file: out.name, tensor: entry.name,
                              "shape \(entry.shape), encoding \(entry.encoding) or counts \(entry.kept)/\(entry.nonzero) cannot be written")
        }
        var e = entry
        (e.offset, e.length, e.xxh64) = try append(stored: stored)
        e.rawLength = rawLength
        tensors.append(e)
    }

    /// Writes the index and trailer and commits the output.
    ///
    /// - Parameter template: the container's metadata; its tensors and files are replaced by those added.
    /// - Returns: the index as any reader of the container will see it (fields 1.1 does not store, such
    ///   as `norm`, are `nil`; derived ones are filled in).
    /// - Throws: what the sink throws, and ``FormatError`` when the index would not read back (an
    ///   entry a reader refuses, such as a name that is not a plain file name, or more tensors than a
    ///   reader accepts); nothing is committed then.
    @discardableResult
    public func finish(index template: ContainerIndex) throws -> ContainerIndex {
        let alpha = template.compression.alphaRequested
        guard alpha == "auto" || Double(alpha).map({ $0.isFinite && $0 > 0 }) == true else {
            throw FormatError(.malformed, file: out.name, "requested α '\(alpha)' is neither \"auto\" nor a positive number")
        }
        // The entries are let go once the body is made (the writer is done): the index read back below is
        // a second copy of them, and with a million tensors each copy is hundreds of MB.
        let body: [UInt8]
        do {
            var index = template
            index.tensors = tensors
            index.files = files
            tensors = []
            body = index.binaryBody(inlineFiles: inlineFiles)
        }
        let written: ContainerIndex
        do {
            written = try ContainerIndex.decodeBinary(body, payloadArea: preamble.count..<offset).index
        } catch {
            throw FormatError(.malformed, file: out.name, tensor: error.tensor, "the index would not read back: \(error.message)")
        }
        try ContainerReader.validate(written, payloadArea: preamble.count..<offset, path: out.name)
        let stored: [UInt8]
        do {
            stored = try IndexCodec.store(body, level: level)
        } catch {
            throw FormatError(.io, file: out.name, "\(error)")
        }
        try out.write(stored)
        try out.write(ContainerLayout.Trailer.bytes(preamble: preamble, index: stored))
        try out.commit()
        return written
    }
}
