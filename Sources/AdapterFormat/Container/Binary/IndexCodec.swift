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

    /// Above this many body bytes the writer does not try the dictionary: 4 KiB of shared text cannot
    /// matter to an index that size, and a second zstd-19 pass over it would.
    static let dictionaryTrialLimit = 1 << 20

    /// The stored index for `body`: every codec is tried and the shortest result kept (on a tie, the
    /// lowest codec number), so the choice depends on the bytes alone.
    ///
    /// - Throws: ``ZstdError`` from libzstd.
    static func store(_ body: [UInt8], level: Int32) throws -> [UInt8] {
        var best = [IndexCodec.none.rawValue] + body
        let framed = try body.withUnsafeBytes { try Zstd.compress($0, level: level) }
        if framed.count + 1 < best.count { best = [IndexCodec.zstd.rawValue] + framed }
        if body.count <= dictionaryTrialLimit {
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
