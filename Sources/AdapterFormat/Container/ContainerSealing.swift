import TaskVector

/// Opening a format 1.1 container without checking any checksum, and writing one back with every checksum
/// recomputed: for the structure-aware fuzz targets (Fuzz/), which change the decoded index and payloads
/// and must get past the checksums to reach the checks and decoders behind them.
///
/// Not for reading containers: ``unseal(_:)`` trusts nothing it is not made to, but skips exactly the
/// integrity checks a reader relies on. Fields a reader derives (offsets, raw lengths of zstd-framed
/// payloads, group sums) are derived again by the reader from what ``seal(_:)`` writes.
@_spi(Fuzzing)
public enum ContainerSealing {
    /// One payload: its bytes, and whether it is stored as a zstd frame of them.
    public struct Payload: Sendable {
        public var bytes: [UInt8]
        /// `true`: ``bytes`` is the decoded content and ``seal(_:)`` frames it; `false`: stored as it is.
        public var framed: Bool

        public init(bytes: [UInt8], framed: Bool) {
            self.bytes = bytes
            self.framed = framed
        }
    }

    /// A container taken apart.
    public struct Parts: Sendable {
        public var index: ContainerIndex
        /// Contents of the files stored inside the index, by name.
        public var inlineFiles: [String: [UInt8]]
        /// The payloads of `index.files` (unused for inline files), in order.
        public var filePayloads: [Payload]
        /// The payloads of `index.tensors`, in order.
        public var tensorPayloads: [Payload]
    }

    /// The parts of a format 1.1 container, read without checking the trailer's header check, the
    /// index checksum or any payload checksum; `nil` when it does not parse.
    public static func unseal(_ bytes: [UInt8]) -> Parts? {
        let size = bytes.count
        guard size >= ContainerLayout.minimumSize, let preamble = ContainerLayout.Preamble(parsing: Array(bytes[0..<ContainerLayout.preambleSize])),
            preamble.major == ContainerLayout.majorVersion, !preamble.isVersion10,
            let trailer = ContainerLayout.Trailer(parsing: Array(bytes[(size - ContainerLayout.trailerSize)...]))
        else { return nil }
        let trailerStart = size - ContainerLayout.trailerSize
        let length = Int(trailer.indexLength)
        guard length >= 1, length <= trailerStart - ContainerLayout.preambleSize else { return nil }
        let indexStart = trailerStart - length
        guard let body = try? IndexCodec.load(Array(bytes[indexStart..<trailerStart])),
            let decoded = try? ContainerIndex.decodeBinary(body, payloadArea: ContainerLayout.preambleSize..<indexStart)
        else { return nil }
        func payload(offset: Int, length: Int, rawLength: Int, framed: Bool) -> Payload {
            let stored = Array(bytes[offset..<(offset + length)])
            guard framed, rawLength <= 1 << 24 else { return Payload(bytes: stored, framed: false) }
            var raw = [UInt8](repeating: 0, count: rawLength)
            let decoded = stored.withUnsafeBytes { s in
                raw.withUnsafeMutableBytes { r in (try? Zstd.decompress(s, into: r)) != nil }
            }
            return decoded ? Payload(bytes: raw, framed: true) : Payload(bytes: stored, framed: false)
        }
        let index = decoded.index
        return Parts(
            index: index, inlineFiles: decoded.inlineFiles,
            filePayloads: index.files.map {
                $0.inline == true ? Payload(bytes: [], framed: false) : payload(offset: $0.offset, length: $0.length, rawLength: $0.rawLength, framed: true)
            },
            tensorPayloads: index.tensors.map {
                payload(offset: $0.offset, length: $0.length, rawLength: $0.rawLength, framed: $0.encoding != PayloadEncoding.ternaryGap.rawValue)
            })
    }

    /// A format 1.1 container of `parts`: payloads back to back (files, then tensors in name order), the
    /// index stored as it is (codec 0), and every checksum and stored length computed from what is written.
    ///
    /// Every other field is written as it is, however wrong; `nil` only when the index cannot be written
    /// at all (a negative count or dimension, a dtype or init rule format 1.1 has no code for, tensors
    /// whose names repeat, an inline file without contents, α neither `auto` nor a number).
    public static func seal(_ parts: Parts, zstdLevel: Int32 = 1) -> [UInt8]? {
        guard parts.filePayloads.count == parts.index.files.count, parts.tensorPayloads.count == parts.index.tensors.count else {
            return nil
        }
        var index = parts.index
        let alpha = index.compression.alphaRequested
        guard alpha == "auto" || Double(alpha) != nil else { return nil }
        let c = index.compression
        guard [c.total, c.keptCount, c.keptNonzero].allSatisfy({ ($0 ?? 0) >= 0 }) else { return nil }
        var area: [UInt8] = []
        func place(_ payload: Payload) -> (length: Int, rawLength: Int, xxh64: String)? {
            var stored = payload.bytes
            if payload.framed {
                guard let framed = try? payload.bytes.withUnsafeBytes({ try Zstd.compress($0, level: zstdLevel) }) else { return nil }
                stored = framed
            }
            area += stored
            return (stored.count, payload.bytes.count, ContainerIndex.hex32(UInt32(truncatingIfNeeded: XXH64.hash(stored))))
        }
        for (i, f) in index.files.enumerated() {
            if f.inline == true {
                guard parts.inlineFiles[f.name] != nil else { return nil }
                continue
            }
            guard let (length, rawLength, xxh64) = place(parts.filePayloads[i]) else { return nil }
            (index.files[i].length, index.files[i].rawLength, index.files[i].xxh64) = (length, rawLength, xxh64)
        }
        let order = index.tensors.indices.sorted { index.tensors[$0].name.utf8.lexicographicallyPrecedes(index.tensors[$1].name.utf8) }
        var tensors: [ContainerIndex.Tensor] = []
        for i in order {
            var t = index.tensors[i]
            guard tensors.last.map({ $0.name.utf8.lexicographicallyPrecedes(t.name.utf8) }) ?? true,
                t.shape.allSatisfy({ $0 >= 0 }), t.encoding >= 0, t.nonzero >= 0, t.kept >= t.nonzero,
                IndexFields.dtypes.contains(t.dtype), IndexFields.initRules.contains(t.initRule),
                let (length, rawLength, xxh64) = place(parts.tensorPayloads[i])
            else { return nil }
            (t.length, t.rawLength, t.xxh64) = (length, rawLength, xxh64)
            tensors.append(t)
        }
        index.tensors = tensors
        let preamble = ContainerLayout.preamble()
        let stored = [IndexCodec.none.rawValue] + index.binaryBody(inlineFiles: parts.inlineFiles)
        guard stored.count <= Int(UInt32.max) else { return nil }
        return preamble + area + stored + ContainerLayout.Trailer.bytes(preamble: preamble, index: stored)
    }
}
