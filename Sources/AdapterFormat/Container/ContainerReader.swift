import Foundation
public import Quantize
public import TaskVector

/// A container opened for reading: the trailer and index are validated on open; each payload is
/// checked against its XXH64 when it is read, so a tensor can be decoded without touching the others.
///
/// The reader is immutable after `init` and safe to share between threads.
public final class ContainerReader: Sendable {
    public let file: MappedFile
    public let index: ContainerIndex
    public let majorVersion: UInt16
    public let minorVersion: UInt16
    /// Offset where the index starts (payloads must end before it).
    private let payloadEnd: Int

    public var path: String { file.path }

    /// Opens `path` (`-` reads standard input to the end).
    public convenience init(path: String) throws {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let error as TaskVectorError {
            throw FormatError(.io, file: path, error.message)
        }
        try self.init(file: file)
    }

    public init(file: MappedFile) throws {
        self.file = file
        let bytes = file.bytes
        let path = file.path
        func bad(_ message: String) -> FormatError { FormatError(.malformed, file: path, message) }
        guard bytes.count >= ContainerLayout.preambleSize + ContainerLayout.trailerSize else {
            throw bad("not a compeft container: \(bytes.count) bytes is too short")
        }
        guard Array(bytes[0..<8]) == ContainerLayout.magic else { throw bad("not a compeft container (bad magic)") }
        let major = bytes.readLE(UInt16.self, at: 8)!
        let minor = bytes.readLE(UInt16.self, at: 10)!
        guard major == ContainerLayout.majorVersion else {
            throw FormatError(.unsupported, file: path,
                              "container format version \(major).\(minor) is not supported; this compeft reads version \(ContainerLayout.majorVersion).x")
        }
        majorVersion = major
        minorVersion = minor
        let t = bytes.count - ContainerLayout.trailerSize
        guard Array(bytes[(t + 40)..<(t + 48)]) == ContainerLayout.trailerMagic else {
            throw bad("container is truncated or damaged (no trailer at the end)")
        }
        let preamble = Array(bytes[0..<ContainerLayout.preambleSize])
        let trailerHash = XXH64.hash(preamble + Array(bytes[t..<(t + 32)]))
        guard trailerHash == bytes.readLE(UInt64.self, at: t + 32)! else {
            throw FormatError(.checksum, file: path, "trailer checksum mismatch: the header is corrupt")
        }
        let indexOffset = bytes.readLE(UInt64.self, at: t)!
        let indexLength = bytes.readLE(UInt64.self, at: t + 8)!
        let indexRaw = bytes.readLE(UInt64.self, at: t + 16)!
        let indexHash = bytes.readLE(UInt64.self, at: t + 24)!
        guard indexOffset >= UInt64(ContainerLayout.preambleSize), indexLength <= UInt64(t),
            indexOffset + indexLength == UInt64(t)
        else { throw bad("index location \(indexOffset)+\(indexLength) does not end at the trailer (\(t))") }
        guard indexRaw <= indexLength * UInt64(Zstd.maxExpansion), indexRaw <= 1 << 30 else {
            throw bad("index claims \(indexRaw) bytes, impossible for \(indexLength) stored bytes")
        }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[Int(indexOffset)..<t])
        guard XXH64.hash(stored) == indexHash else {
            throw FormatError(.checksum, file: path, "index checksum mismatch: the index is corrupt")
        }
        do {
            try Zstd.checkDecodedLength(stored, is: Int(indexRaw))
        } catch {
            throw bad("index does not decompress: \(error)")
        }
        var json = [UInt8](repeating: 0, count: Int(indexRaw))
        do {
            try json.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) }
        } catch {
            throw bad("index does not decompress: \(error)")
        }
        let index: ContainerIndex
        do {
            index = try JSONDecoder().decode(ContainerIndex.self, from: Data(json))
        } catch {
            throw bad("index is not valid: \(error)")
        }
        payloadEnd = Int(indexOffset)
        try Self.validate(index, payloadEnd: payloadEnd, path: path)
        self.index = index
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

    /// The stored bytes of a payload after checking its checksum.
    func stored(offset: Int, length: Int, xxh64: String, tensor: String?) throws -> UnsafeRawBufferPointer {
        let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[offset..<(offset + length)])
        guard XXH64.hex(XXH64.hash(bytes)) == xxh64 else {
            throw FormatError(.checksum, file: path, tensor: tensor, "checksum mismatch: the payload is corrupt")
        }
        return bytes
    }

    private func decompressed(offset: Int, length: Int, rawLength: Int, xxh64: String, tensor: String?) throws -> [UInt8] {
        let source = try stored(offset: offset, length: length, xxh64: xxh64, tensor: tensor)
        do {
            try Zstd.checkDecodedLength(source, is: rawLength)
        } catch {
            throw FormatError(.malformed, file: path, tensor: tensor, "payload does not decode: \(error)")
        }
        var out = [UInt8](repeating: 0, count: rawLength)
        do {
            try out.withUnsafeMutableBytes { try Zstd.decompress(source, into: $0) }
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
                var code = try GapCoder.decode(stored, count: t.count, nonzero: t.nonzero)
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
