/// Decoding tables that resolve several short Golomb code words with one lookup.
///
/// The table of a Golomb parameter is indexed by the next ``windowBits`` stream bits. Its entry
/// decodes the code words that lie wholly inside the window, one after another from its first bit,
/// as long as the positions they reach stay within ``patternBits`` of the first: bit j of the entry's
/// pattern is set when position `next + j` is kept (`next` being the run start or the previous kept
/// position + 1), `advance` is where the next gap starts counting (`next + advance`), and `bits` the
/// stream bits used. An entry with advance 0 resolves nothing (a code word longer than the window, or a
/// gap past the pattern), and the decoder reads that code word on its own.
///
/// The tables are built for the moduli where code words are short enough to pack (m ≤ 32): a 64-bit
/// entry `pattern | kept << 48 | advance << 54 | bits << 60` (kept: the pattern's set bits), 2^11 entries (16 KiB) a table.
enum GolombTable {
    /// Stream bits a lookup sees.
    static let windowBits = 11
    /// Positions a pattern spans at most.
    static let patternBits = 48
    /// Golomb indices with a table (m = 1 … 32).
    static let indices = 0..<32

    /// All tables, one after another, built once on first use.
    nonisolated(unsafe) static let storage: UnsafePointer<UInt64> = {
        let size = 1 << windowBits
        let tables = UnsafeMutablePointer<UInt64>.allocate(capacity: indices.count * size)
        for index in indices {
            let golomb = GolombParameter(index: index)
            for window in 0..<size { tables[index * size + window] = entry(window: UInt64(window), golomb: golomb) }
        }
        return UnsafePointer(tables)
    }()

    /// The table of Golomb index `index`, or nil when it has none.
    @inline(__always)
    static func table(_ index: Int) -> UnsafePointer<UInt64>? {
        indices.contains(index) ? storage + index &* (1 << windowBits) : nil
    }

    /// The entry for the stream bits `window` (first bit in bit 0), decoded as ``GapCoder`` decodes
    /// one gap at a time: q ones, a zero, the short field, and for r ≥ t one more bit.
    static func entry(window: UInt64, golomb: GolombParameter) -> UInt64 {
        func bit(_ i: Int) -> UInt64 { (window >> UInt64(i)) & 1 }
        var used = 0
        var advance = 0
        var pattern: UInt64 = 0
        while true {
            var q = 0
            while used + q < windowBits && bit(used + q) == 1 { q += 1 }
            var end = used + q + 1
            guard end + golomb.shortWidth <= windowBits else { break }
            var x = 0
            for i in 0..<golomb.shortWidth { x |= Int(bit(end + i)) << i }
            end += golomb.shortWidth
            var r = x
            if x >= golomb.threshold {
                guard end + 1 <= windowBits else { break }
                r = (x << 1) + Int(bit(end)) - golomb.threshold
                end += 1
            }
            let gap = q * golomb.modulus + r
            guard advance + gap + 1 <= patternBits else { break }
            pattern |= 1 << UInt64(advance + gap)
            advance += gap + 1
            used = end
        }
        return pattern | UInt64(pattern.nonzeroBitCount) << 48 | UInt64(advance) << 54 | UInt64(used) << 60
    }
}
