/// Reads bit fields least significant bit first from a zero-padded copy of a stream.
///
/// Every load is eight bytes at `position / 8`, so `base` must stay readable for
/// ``BitReader/padding`` bytes past the end of the stream. Reads past `bitLimit` return zero bits;
/// callers check ``BitReader/isOverrun`` after each code word (no code word on the fast path is
/// longer than 64 bits), and the slow paths check on every step, so a hostile stream can never walk
/// the reader off its padding.
struct BitReader {
    /// Zero bytes the owner keeps after the stream.
    static let padding = 24

    let base: UnsafeRawPointer
    /// Bits in the stream.
    let bitLimit: Int
    /// The next bit to read.
    var position: Int

    init(base: UnsafeRawPointer, bitLimit: Int, position: Int = 0) {
        self.base = base
        self.bitLimit = bitLimit
        self.position = position
    }

    /// Whether a read went past the end of the stream.
    @inline(__always)
    var isOverrun: Bool { position > bitLimit }

    /// The next 57 or more bits, starting at `position` (bit 0 of the result); bits past the
    /// stream are zero.
    @inline(__always)
    func peek() -> UInt64 {
        assert(position >= 0 && position <= bitLimit &+ 64)
        let word = base.loadUnaligned(fromByteOffset: position &>> 3, as: UInt64.self)
        return UInt64(littleEndian: word) &>> UInt64(position & 7)
    }

    /// Reads `count` bits (0...56) as an unsigned value.
    @inline(__always)
    mutating func read(_ count: Int) -> UInt64 {
        assert(count >= 0 && count <= 56)
        let value = peek() & ((1 &<< UInt64(count)) &- 1)
        position &+= count
        return value
    }

    /// Reads an Elias-gamma value written by ``BitWriter/writeGamma(_:)``, at most `limit`.
    ///
    /// - Throws: ``QuantizeError`` when the value has more than 40 significant bits, exceeds
    ///   `limit`, or runs past the end of the stream.
    mutating func readGamma(limit: UInt64, what: String) throws -> UInt64 {
        let zeros = peek().trailingZeroBitCount
        guard zeros <= 40 else { throw QuantizeError("gap stream: \(what) too long at bit \(position)") }
        position &+= zeros
        let value = read(zeros &+ 1).bitReversed(width: zeros &+ 1)
        guard !isOverrun else { throw QuantizeError("gap stream: truncated in \(what) at bit \(position)") }
        guard value <= limit else {
            throw QuantizeError("gap stream: \(what) \(value) exceeds \(limit) at bit \(position)")
        }
        return value
    }
}
