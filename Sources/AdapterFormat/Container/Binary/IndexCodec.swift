/// How a format 1.1 index body is stored: the codec byte that starts the stored index, then the body as
/// the codec stores it (docs/FORMAT.md, "Index codec").
enum IndexCodec: UInt8, CaseIterable {
    /// The body as it is.
    case none = 0
    /// One zstd frame of the body.
    case zstd = 1
    /// One zstd frame of the body, compressed against ``IndexDictionary/one`` as a raw-content dictionary.
    case zstdDictionary1 = 2

    /// The largest index body a reader accepts.
    static let maxBodyLength = 1 << 30

    /// Above this many body bytes the writer compresses at ``largeBodyLevel`` at most and does not try
    /// the dictionary: zstd -19 runs at about 0.5 MB/s, which a body of a million tensors (tens of MB)
    /// cannot afford, and 4 KiB of shared text cannot matter to an index that size. A PEFT adapter's
    /// index (hundreds of tensors) stays below it.
    static let highLevelLimit = 32 << 10

    /// The zstd level for bodies above ``highLevelLimit`` (about 20 MB/s; the index comes out about 1.5×
    /// the size level 19 gives, next to payloads of at least a few bytes per tensor).
    static let largeBodyLevel: Int32 = 9

    /// The stored index for `body`: every codec is tried and the shortest result kept (on a tie, the
    /// lowest codec number), so the choice depends on the bytes alone.
    ///
    /// - Throws: ``ZstdError`` from libzstd.
    static func store(_ body: [UInt8], level: Int32) throws -> [UInt8] {
        var best = [IndexCodec.none.rawValue] + body
        let large = body.count > highLevelLimit
        let framed = try body.withUnsafeBytes { try Zstd.compress($0, level: large ? min(level, largeBodyLevel) : level) }
        if framed.count + 1 < best.count { best = [IndexCodec.zstd.rawValue] + framed }
        if !large {
            let primed = try body.withUnsafeBytes { try Zstd.compress($0, level: level, dictionary: IndexDictionary.one) }
            if primed.count + 1 < best.count { best = [IndexCodec.zstdDictionary1.rawValue] + primed }
        }
        return best
    }

    /// Why a stored index cannot be opened.
    enum LoadError: Error {
        /// The codec byte names a codec this compeft does not know.
        case unknownCodec(UInt8)
        case zstd(ZstdError)
    }

    /// The body of a stored index (its codec byte first).
    ///
    /// - Throws: ``LoadError`` for an empty index, an unknown codec, or a frame that does not decode to
    ///   exactly the size it declares (checked before allocating; at most ``maxBodyLength``).
    static func load(_ stored: [UInt8]) throws(LoadError) -> [UInt8] {
        guard let first = stored.first else { throw .zstd(ZstdError("the index is empty")) }
        guard let codec = IndexCodec(rawValue: first) else { throw .unknownCodec(first) }
        let frame = stored[1...]
        if codec == .none { return Array(frame) }
        do {
            return try frame.withUnsafeBytes { f in
                let length = try Zstd.declaredLength(f, limit: maxBodyLength)
                var body = [UInt8](repeating: 0, count: length)
                try body.withUnsafeMutableBytes {
                    try Zstd.decompress(f, into: $0, dictionary: codec == .zstdDictionary1 ? IndexDictionary.one : nil)
                }
                return body
            }
        } catch let error as ZstdError {
            throw .zstd(error)
        } catch {
            throw .zstd(ZstdError("\(error)"))
        }
    }
}
