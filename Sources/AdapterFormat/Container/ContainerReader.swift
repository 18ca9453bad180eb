import Foundation
public import Quantize
public import TaskVector

/// A container opened for reading: the trailer and index are validated on open; each payload is
/// checked against its checksum when it is read, so a tensor can be decoded without touching the others.
///
/// Reads format 1.1 (binary index) and 1.0 (JSON index) containers; see docs/FORMAT.md.
/// The reader is immutable after `init` and safe to share between threads.
public final class ContainerReader: Sendable {
    /// Where the bytes come from: a file read with `pread` (never mapped, so a file that shrinks under
    /// an open reader is an I/O error, not a crash), memory, or a remote blob.
    public let source: any ByteSource
    public let index: ContainerIndex
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    /// Verbatim files stored inside the index (format 1.1), by name.
    private let inlineFiles: [String: [UInt8]]
    /// Tensors and files carrying a critical field this compeft does not know, with the reason.
    private let refusedTensors: [String: String]
    private let refusedFiles: [String: String]

    /// The name of the source: the path as the user gave it, or a reference.
    public var path: String { source.name }
    /// The container's size in bytes.
    public var size: Int { source.size }

    /// Opens `path` (`-` reads standard input to the end).
    ///
    /// - Throws: ``FormatError`` (`.io`) when the file cannot be opened or is not a regular file, and
    ///   as ``init(source:)`` does.
    public convenience init(path: String) throws {
        let source: any ByteSource
        do {
            source = path == "-" ? MemoryByteSource.standardInput() : try FileByteSource(path: path)
        } catch let error as TaskVectorError {
            throw FormatError(.io, file: path, error.message)
        }
        try self.init(source: source)
    }

    /// Opens a container held in memory; `name` is used in errors.
    public convenience init(name: String, contents: [UInt8]) throws {
        try self.init(source: MemoryByteSource(name: name, contents: contents))
    }

    /// Reads and checks the preamble, trailer and index of `source`.
    ///
    /// - Throws: ``FormatError``: `.malformed` or `.checksum` for a damaged container, `.unsupported`
    ///   for a major version, index codec or critical index field this build does not know, `.io` when
    ///   the source cannot be read.
    public init(source: any ByteSource) throws {
        self.source = source
        let path = source.name
        let size = source.size
        guard size >= ContainerLayout.minimumSize else {
            throw FormatError(.malformed, file: path, "not a compeft container: \(size) bytes is too short")
        }
        let head = try Self.read(source, 0..<min(size, ContainerLayout.Legacy.preambleSize))
        guard let preamble = ContainerLayout.Preamble(parsing: head) else {
            throw FormatError(.malformed, file: path, "not a compeft container (bad magic)")
        }
        guard preamble.major == ContainerLayout.majorVersion else {
            throw FormatError(.unsupported, file: path,
                              "container format version \(preamble.major).\(preamble.minor) is not supported; this compeft reads version \(ContainerLayout.majorVersion).x")
        }
        majorVersion = preamble.major
        minorVersion = preamble.minor
        let (decoded, indexStart) = try preamble.isVersion10
            ? Self.openVersion10(source, preamble: head)
            : Self.open(source, preamble: Array(head[0..<ContainerLayout.preambleSize]))
        try Self.validate(decoded.index, payloadArea: preamble.size..<indexStart, path: path)
        index = decoded.index
        inlineFiles = decoded.inlineFiles
        refusedTensors = decoded.refusedTensors
        refusedFiles = decoded.refusedFiles
    }

    /// Opens the trailer and binary index of a format 1.1 (or later 1.x) container.
    private static func open(_ source: any ByteSource, preamble: [UInt8]) throws -> (DecodedIndex, indexStart: Int) {
        let path = source.name
        func bad(_ message: String) -> FormatError { FormatError(.malformed, file: path, message) }
        let size = source.size
        let trailerStart = size - ContainerLayout.trailerSize
        guard let trailer = ContainerLayout.Trailer(parsing: try read(source, trailerStart..<size)) else {
            throw bad("container is truncated or damaged (no trailer at the end)")
        }
        guard ContainerLayout.Trailer.headerCheck(preamble: preamble, indexLength: trailer.indexLength) == trailer.headerCheck else {
            throw FormatError(.checksum, file: path, "trailer checksum mismatch: the header is corrupt")
        }
        let length = Int(trailer.indexLength)
        guard length >= 1, length <= trailerStart - ContainerLayout.preambleSize else {
            throw bad("index of \(length) bytes does not fit between the preamble and the trailer (\(trailerStart) bytes)")
        }
        let indexStart = trailerStart - length
        let stored = try read(source, indexStart..<trailerStart)
        guard XXH64.hash(stored) == trailer.indexChecksum else {
            throw FormatError(.checksum, file: path, "index checksum mismatch: the index is corrupt")
        }
        let body: [UInt8]
        do {
            body = try IndexCodec.load(stored)
        } catch .unknownCodec(let codec) {
            throw FormatError(.unsupported, file: path, "index codec \(codec) is not known to this compeft (written by a newer version?)")
        } catch .zstd(let error) {
            throw bad("index does not decompress: \(error)")
        }
        do {
            return (try ContainerIndex.decodeBinary(body, payloadArea: ContainerLayout.preambleSize..<indexStart), indexStart)
        } catch {
            throw FormatError(error.unsupported ? .unsupported : .malformed, file: path, tensor: error.tensor,
                              "index is not valid: \(error.message)")
        }
    }

    /// `source`'s bytes in `range`; a failed read becomes a ``FormatError`` (`.io`) naming the source.
    static func read(_ source: any ByteSource, _ range: Range<Int>) throws -> [UInt8] {
        do {
            return try source.bytes(range)
        } catch let error as TaskVectorError {
            throw FormatError(.io, file: source.name, error.message)
        }
    }

    /// The checks every index gets, whatever its version: names, shapes, counts, payload ranges and the
    /// rules of each encoding (docs/FORMAT.md, "Bad inputs").
    static func validate(_ index: ContainerIndex, payloadArea: Range<Int>, path: String) throws {
        var names = Set<String>()
        func checkRange(_ offset: Int, _ length: Int, _ raw: Int, _ what: String, tensor: String?) throws {
            guard offset >= payloadArea.lowerBound, length >= 0, offset <= payloadArea.upperBound - length else {
                throw FormatError(.malformed, file: path, tensor: tensor, "\(what) payload \(offset)+\(length) lies outside the file's payload area")
            }
            guard raw >= 0, raw / Zstd.maxExpansion <= length else {
                throw FormatError(.malformed, file: path, tensor: tensor, "\(what) claims \(raw) decoded bytes from \(length) stored bytes")
            }
        }
        func isPlainName(_ name: String) -> Bool { !name.isEmpty && !name.contains("/") && name != "." && name != ".." }
        func checkChecksum(_ hex: String?, _ what: String, tensor: String?) throws {
            guard let hex, hex.utf8.count == 8 || hex.utf8.count == 16, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw FormatError(.malformed, file: path, tensor: tensor, "\(what) has no valid checksum")
            }
        }
        var fileNames = Set<String>()
        for f in index.files {
            guard isPlainName(f.name), fileNames.insert(f.name).inserted else {
                throw FormatError(.malformed, file: path, "auxiliary file name '\(f.name)' is not a plain file name, or appears twice")
            }
            if f.inline != true {
                try checkRange(f.offset, f.length, f.rawLength, "file '\(f.name)'", tensor: nil)
                try checkChecksum(f.xxh64, "file '\(f.name)'", tensor: nil)
            }
        }
        // Names in strictly increasing order (every 1.1 index) are distinct without a set of them.
        let increasing = zip(index.tensors, index.tensors.dropFirst()).allSatisfy { $0.name.utf8Precedes($1.name) }
        var plainFile: String?
        for t in index.tensors {
            guard !t.name.isEmpty, increasing || names.insert(t.name).inserted else {
                throw FormatError(.malformed, file: path, tensor: t.name, "empty or duplicate tensor name")
            }
            if t.file != plainFile {
                guard isPlainName(t.file) else {
                    throw FormatError(.malformed, file: path, tensor: t.name, "output file name '\(t.file)' is not a plain file name")
                }
                plainFile = t.file
            }
            guard let count = checkedElementCount(t.shape), count == t.count else {
                throw FormatError(.malformed, file: path, tensor: t.name, "shape \(t.shape) does not hold \(t.count) values")
            }
            guard t.nonzero >= 0, t.nonzero <= t.kept, t.kept <= t.count else {
                throw FormatError(.malformed, file: path, tensor: t.name, "kept counts \(t.kept)/\(t.nonzero) are impossible for \(t.count) values")
            }
            try checkRange(t.offset, t.length, t.rawLength, "tensor", tensor: t.name)
            try checkChecksum(t.xxh64, "the payload", tensor: t.name)
            if let encoding = PayloadEncoding(rawValue: t.encoding), encoding == .ternaryGap {
                guard t.rawLength == t.length else {
                    throw FormatError(.malformed, file: path, tensor: t.name, "a gap-coded payload's raw length must equal its stored length")
                }
                guard t.dtype.isFloatingPoint, t.count <= GapCoder.maxCount else {
                    throw FormatError(.malformed, file: path, tensor: t.name, "a \(t.dtype.rawValue) tensor of \(t.count) values cannot hold a gap code")
                }
            } else if let encoding = PayloadEncoding(rawValue: t.encoding) {
                guard PayloadEncoding.rawLength(encoding, count: t.count, nonzero: t.nonzero, dtype: t.dtype) == t.rawLength else {
                    throw FormatError(.malformed, file: path, tensor: t.name, "payload length \(t.rawLength) does not match its shape and counts")
                }
                if encoding != .raw && !t.dtype.isFloatingPoint {
                    throw FormatError(.malformed, file: path, tensor: t.name, "a \(t.dtype.rawValue) tensor cannot hold a ternary code")
                }
            }
            guard Float(bitPattern: t.scaleBits).isFinite else {
                throw FormatError(.malformed, file: path, tensor: t.name, "scale is not finite")
            }
        }
    }

    /// The tensor entry called `name`.
    public func tensor(named name: String) -> ContainerIndex.Tensor? {
        index.tensors.first { $0.name == name }
    }

    /// The stored bytes of a payload, read from the source and checked against their checksum.
    func stored(offset: Int, length: Int, xxh64: String, tensor: String?) throws -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = try source.bytes(offset..<(offset + length))
        } catch let error as TaskVectorError {
            throw FormatError(.io, file: path, tensor: tensor, error.message)
        }
        // Format 1.0 stores all 16 hex digits, 1.1 the low 8 (validated on open).
        let hash = bytes.withUnsafeBytes { XXH64.hash($0) }
        guard XXH64.hex(hash, digits: xxh64.utf8.count == 8 ? 8 : 16) == xxh64 else {
            throw FormatError(.checksum, file: path, tensor: tensor, "checksum mismatch: the payload is corrupt")
        }
        return bytes
    }

    func decompressed(offset: Int, length: Int, rawLength: Int, xxh64: String, tensor: String?) throws -> [UInt8] {
        let stored = try stored(offset: offset, length: length, xxh64: xxh64, tensor: tensor)
        var out = [UInt8](repeating: 0, count: 0)
        do {
            try stored.withUnsafeBytes { source in
                try Zstd.checkDecodedLength(source, is: rawLength)
                out = [UInt8](repeating: 0, count: rawLength)
                try out.withUnsafeMutableBytes { try Zstd.decompress(source, into: $0) }
            }
        } catch {
            throw FormatError(.malformed, file: path, tensor: tensor, "payload does not decode: \(error)")
        }
        return out
    }

    /// The stored `adapter_config.json`, byte for byte, or `nil` when the container holds none.
    ///
    /// - Throws: ``FormatError`` when its payload is corrupt.
    public func adapterConfig() throws -> [UInt8]? {
        guard let f = index.files.first(where: { $0.name == "adapter_config.json" }) else { return nil }
        return try contents(of: f)
    }

    /// The bytes of a verbatim file, checked.
    ///
    /// - Throws: ``FormatError``: `.checksum` or `.malformed` when its payload is corrupt, `.unsupported`
    ///   when its entry carries a critical field this compeft does not know.
    public func contents(of f: ContainerIndex.File) throws -> [UInt8] {
        if let reason = refusedFiles[f.name] {
            throw FormatError(.unsupported, file: path, "file '\(f.name)': \(reason)")
        }
        if f.inline == true {
            guard let bytes = inlineFiles[f.name] else {
                throw FormatError(.malformed, file: path, "file '\(f.name)' is not stored in this container's index")
            }
            return bytes
        }
        guard let xxh64 = f.xxh64 else {
            throw FormatError(.malformed, file: path, "file '\(f.name)' has no checksum")
        }
        return try decompressed(offset: f.offset, length: f.length, rawLength: f.rawLength, xxh64: xxh64, tensor: nil)
    }

    /// Checks one tensor's checksum and that it decodes; throws the first problem found.
    ///
    /// A gap-coded tensor is checked without being decoded into a mask, so the memory this takes does not
    /// follow the tensor's declared size (a 2.7 KB container may declare 10¹¹ values).
    public func verify(_ t: ContainerIndex.Tensor) throws {
        guard try decodableEncoding(t) == .ternaryGap else {
            _ = try payload(t)
            return
        }
        let stored = try stored(offset: t.offset, length: t.length, xxh64: t.xxh64, tensor: t.name)
        do {
            try stored.withUnsafeBytes { try GapCoder.validate($0, count: t.count, nonzero: t.nonzero) }
        } catch {
            throw FormatError(.malformed, file: path, tensor: t.name, "payload does not decode: \(error)")
        }
    }

    /// A decoded payload: the raw bytes of an exact tensor, or the code of a ternary/sparse one.
    public enum Payload {
        case exact([UInt8])
        case code(TernaryCode)
    }

    /// The tensor's encoding, when this compeft can decode the tensor.
    ///
    /// - Throws: ``FormatError`` (`.unsupported`) for an encoding or a critical index field this compeft
    ///   does not know: that tensor only, the others still decode.
    func decodableEncoding(_ t: ContainerIndex.Tensor) throws -> PayloadEncoding {
        guard let encoding = PayloadEncoding(rawValue: t.encoding) else {
            throw FormatError(.unsupported, file: path, tensor: t.name,
                              "payload encoding \(t.encoding) is not known to this compeft (written by a newer version?)")
        }
        if let reason = refusedTensors[t.name] { throw FormatError(.unsupported, file: path, tensor: t.name, reason) }
        return encoding
    }

    /// Reads, checks and decodes one tensor's payload.
    public func payload(_ t: ContainerIndex.Tensor) throws -> Payload {
        let encoding = try decodableEncoding(t)
        if encoding == .ternaryGap {
            let stored = try stored(offset: t.offset, length: t.length, xxh64: t.xxh64, tensor: t.name)
            do {
                var code = try stored.withUnsafeBytes { try GapCoder.decode($0, count: t.count, nonzero: t.nonzero) }
                code.keptCount = t.kept
                return .code(code)
            } catch {
                throw FormatError(.malformed, file: path, tensor: t.name, "payload does not decode: \(error)")
            }
        }
        let raw = try decompressed(offset: t.offset, length: t.length, rawLength: t.rawLength, xxh64: t.xxh64, tensor: t.name)
        if encoding == .raw { return .exact(raw) }
        let (code, problem) = raw.withUnsafeBytes {
            PayloadEncoding.code(from: $0, encoding: encoding, count: t.count, kept: t.kept, nonzero: t.nonzero)
        }
        guard let code else { throw FormatError(.malformed, file: path, tensor: t.name, problem ?? "bad payload") }
        return .code(code)
    }

    /// Decodes a tensor's values (init + residual for residual tensors, the stored values for exact
    /// ones) as `Float` into `destination`.
    ///
    /// - Parameter base: the base tensor for `initRule == .base` (nil decodes the residual alone); ignored otherwise.
    public func decodeValues(_ t: ContainerIndex.Tensor, base: TensorData?, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(destination.count == t.count)
        switch try payload(t) {
        case .exact(let raw):
            guard t.dtype.isFloatingPoint else {
                throw FormatError(.unsupported, file: path, tensor: t.name, "\(t.dtype.rawValue) values are not numbers to decode")
            }
            raw.withUnsafeBytes { TensorData(dtype: t.dtype, bytes: $0, owner: nil).loadFloats(from: 0, into: destination) }
        case .code(let code):
            let scale = Float(bitPattern: t.scaleBits)
            switch (t.initRule, base) {
            case (.one, _):
                destination.update(repeating: 1)
                code.accumulate(scale: scale, into: destination)
            case (.base, let base?):
                base.loadFloats(from: 0, into: destination)
                code.accumulate(scale: scale, into: destination)
            default:
                code.decode(scale: scale, into: destination)
            }
        }
    }
}
