import Foundation
public import Quantize
public import TaskVector

/// A container opened for reading: the trailer and index are validated on open; each payload is
/// checked against its XXH64 when it is read, so a tensor can be decoded without touching the others.
///
/// The reader is immutable after `init` and safe to share between threads.
public final class ContainerReader: Sendable {
    /// Where the bytes come from: a file read with `pread` (never mapped, so a file that shrinks under
    /// an open reader is an I/O error, not a crash), memory, or a remote blob.
    public let source: any ByteSource
    public let index: ContainerIndex
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    /// Offset where the index starts (payloads must end before it).
    private let payloadEnd: Int

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
    ///   for a major version this build does not read, `.io` when the source cannot be read.
    public init(source: any ByteSource) throws {
        self.source = source
        let path = source.name
        func bad(_ message: String) -> FormatError { FormatError(.malformed, file: path, message) }
        let size = source.size
        guard size >= ContainerLayout.preambleSize + ContainerLayout.trailerSize else {
            throw bad("not a compeft container: \(size) bytes is too short")
        }
        let preamble = try Self.read(source, 0..<ContainerLayout.preambleSize)
        let t = size - ContainerLayout.trailerSize
        let trailerBytes = try Self.read(source, t..<size)
        guard let header = ContainerLayout.Preamble(parsing: preamble) else { throw bad("not a compeft container (bad magic)") }
        guard header.major == ContainerLayout.majorVersion else {
            throw FormatError(.unsupported, file: path,
                              "container format version \(header.major).\(header.minor) is not supported; this compeft reads version \(ContainerLayout.majorVersion).x")
        }
        majorVersion = header.major
        minorVersion = header.minor
        guard let trailer = ContainerLayout.Trailer(parsing: trailerBytes) else {
            throw bad("container is truncated or damaged (no trailer at the end)")
        }
        guard XXH64.hash(preamble + trailerBytes[0..<32]) == trailer.headerHash else {
            throw FormatError(.checksum, file: path, "trailer checksum mismatch: the header is corrupt")
        }
        guard trailer.indexOffset >= UInt64(ContainerLayout.preambleSize), trailer.indexLength <= UInt64(t),
            trailer.indexOffset == UInt64(t) - trailer.indexLength
        else { throw bad("index location \(trailer.indexOffset)+\(trailer.indexLength) does not end at the trailer (\(t))") }
        guard trailer.indexRawLength <= trailer.indexLength * UInt64(Zstd.maxExpansion), trailer.indexRawLength <= 1 << 30 else {
            throw bad("index claims \(trailer.indexRawLength) bytes, impossible for \(trailer.indexLength) stored bytes")
        }
        let indexStart = Int(trailer.indexOffset)
        let stored = try Self.read(source, indexStart..<t)
        guard XXH64.hash(stored) == trailer.indexHash else {
            throw FormatError(.checksum, file: path, "index checksum mismatch: the index is corrupt")
        }
        var json = [UInt8](repeating: 0, count: Int(trailer.indexRawLength))
        do {
            try stored.withUnsafeBytes { stored in
                try Zstd.checkDecodedLength(stored, is: json.count)
                try json.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) }
            }
        } catch {
            throw bad("index does not decompress: \(error)")
        }
        let index: ContainerIndex
        do {
            index = try JSONDecoder().decode(ContainerIndex.self, from: Data(json))
        } catch {
            throw bad("index is not valid: \(JSONDiagnosis.explain(error, in: json, as: ContainerIndex.self))")
        }
        payloadEnd = indexStart
        try Self.validate(index, payloadEnd: payloadEnd, path: path)
        self.index = index
    }

    /// `source`'s bytes in `range`; a failed read becomes a ``FormatError`` (`.io`) naming the source.
    private static func read(_ source: any ByteSource, _ range: Range<Int>) throws -> [UInt8] {
        do {
            return try source.bytes(range)
        } catch let error as TaskVectorError {
            throw FormatError(.io, file: source.name, error.message)
        }
    }

    private static func validate(_ index: ContainerIndex, payloadEnd: Int, path: String) throws {
        var names = Set<String>()
        func checkRange(_ offset: Int, _ length: Int, _ raw: Int, _ what: String, tensor: String?) throws {
            guard offset >= ContainerLayout.preambleSize, length >= 0, offset <= payloadEnd - length else {
                throw FormatError(.malformed, file: path, tensor: tensor, "\(what) payload \(offset)+\(length) lies outside the file's payload area")
            }
            guard raw >= 0, raw / Zstd.maxExpansion <= length else {
                throw FormatError(.malformed, file: path, tensor: tensor, "\(what) claims \(raw) decoded bytes from \(length) stored bytes")
            }
        }
        for f in index.files {
            guard !f.name.isEmpty, !f.name.contains("/"), f.name != ".", f.name != ".." else {
                throw FormatError(.malformed, file: path, "auxiliary file name '\(f.name)' is not a plain file name")
            }
            try checkRange(f.offset, f.length, f.rawLength, "file '\(f.name)'", tensor: nil)
        }
        for t in index.tensors {
            guard !t.name.isEmpty, names.insert(t.name).inserted else {
                throw FormatError(.malformed, file: path, tensor: t.name, "empty or duplicate tensor name")
            }
            guard !t.file.isEmpty, !t.file.contains("/"), t.file != ".", t.file != ".." else {
                throw FormatError(.malformed, file: path, tensor: t.name, "output file name '\(t.file)' is not a plain file name")
            }
            guard let count = checkedElementCount(t.shape), count == t.count else {
                throw FormatError(.malformed, file: path, tensor: t.name, "shape \(t.shape) does not hold \(t.count) values")
            }
            guard t.nonzero >= 0, t.nonzero <= t.kept, t.kept <= t.count else {
                throw FormatError(.malformed, file: path, tensor: t.name, "kept counts \(t.kept)/\(t.nonzero) are impossible for \(t.count) values")
            }
            try checkRange(t.offset, t.length, t.rawLength, "tensor", tensor: t.name)
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
        guard XXH64.hex(bytes.withUnsafeBytes { XXH64.hash($0) }) == xxh64 else {
            throw FormatError(.checksum, file: path, tensor: tensor, "checksum mismatch: the payload is corrupt")
        }
        return bytes
    }

    private func decompressed(offset: Int, length: Int, rawLength: Int, xxh64: String, tensor: String?) throws -> [UInt8] {
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
    public func contents(of f: ContainerIndex.File) throws -> [UInt8] {
        try decompressed(offset: f.offset, length: f.length, rawLength: f.rawLength, xxh64: f.xxh64, tensor: nil)
    }

    /// Checks one tensor's checksum and that it decodes; throws the first problem found.
    public func verify(_ t: ContainerIndex.Tensor) throws {
        _ = try payload(t)
    }

    /// A decoded payload: the raw bytes of an exact tensor, or the code of a ternary/sparse one.
    public enum Payload {
        case exact([UInt8])
        case code(TernaryCode)
    }

    /// Reads, checks and decodes one tensor's payload.
    public func payload(_ t: ContainerIndex.Tensor) throws -> Payload {
        guard let encoding = PayloadEncoding(rawValue: t.encoding) else {
            throw FormatError(.unsupported, file: path, tensor: t.name,
                              "payload encoding \(t.encoding) is not known to this compeft (written by a newer version?)")
        }
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
