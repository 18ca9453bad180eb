/// Appends bit fields least significant bit first, as the gap coder's streams are laid out.
///
/// Bit i of the stream is bit (i mod 8) of byte i / 8. A field of `count` bits is written low bit
/// first, so reading the same width back at the same offset returns the same value.
///
/// Whole words go to a buffer the writer owns and grows by doubling, so the hot path of ``write(_:count:)``
/// is a shift, an or and, every 64 bits, one store.
struct BitWriter: ~Copyable {
    private var words: UnsafeMutablePointer<UInt64>
    private var capacity: Int
    private var stored = 0
    private var accumulator: UInt64 = 0
    private var used = 0

    /// Bits written so far.
    var bitCount: Int { stored &* 64 &+ used }

    init(reservingBits bits: Int = 0) {
        capacity = max(16, bits / 64 + 1)
        words = .allocate(capacity: capacity)
    }

    deinit { words.deallocate() }

    /// Writes the low `count` bits of `value`; the bits above `count` must be zero.
    @inline(__always)
    mutating func write(_ value: UInt64, count: Int) {
        assert(count >= 0 && count <= 64 && (count == 64 || value &>> UInt64(count) == 0))
        accumulator |= value &<< UInt64(used)
        let total = used &+ count
        if total >= 64 {
            if stored == capacity { grow() }
            words[stored] = accumulator
            stored &+= 1
            // The bits of `value` that did not fit; two shifts, as a shift by 64 is not defined.
            accumulator = (value &>> 1) &>> UInt64(63 &- used)
            used = total &- 64
        } else {
            used = total
        }
    }

    /// Writes the Golomb code word of every gap between the set bits of `words` in positions
    /// `start..<end` (from `start`, then from one past each set bit), then the gap to `end`.
    ///
    /// The same bits as ``GolombParameter/write(_:to:)`` per gap, with the writer's state held in
    /// locals for the loop: as an `inout` the state would go through memory on every word.
    mutating func writeGolombGaps(_ words: UnsafeBufferPointer<UInt64>, from start: Int, to end: Int,
                                  golomb: GolombParameter) {
        var position = start
        var acc = accumulator
        var bits = used
        var count = stored
        var buffer = self.words
        var limit = capacity
        guard start < end else {
            golomb.write(end &- position, to: &self)
            return
        }
        // Long runs read the code words of gaps below 256 from a table: value | length << 56
        // (0 where a word would be longer than 56 bits). Short runs do not repay building it.
        let tableSize = end &- start >= 1 << 16 ? 256 : 0
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 256) { table in
            for g in 0..<tableSize {
                let (q, r) = golomb.divide(g)
                let (field, width) = golomb.remainderField(r)
                let length = q &+ 1 &+ width
                table[g] = length > 56 ? 0
                    : ((1 &<< UInt64(q)) &- 1) | (field &<< UInt64(q &+ 1)) | UInt64(length) &<< 56
            }
            for w in (start &>> 6)..<((end &+ 63) &>> 6) {
                var word = words[w]
                while word != 0 {
                    let kept = w &<< 6 | word.trailingZeroBitCount
                    word &= word &- 1
                    let gap = kept &- position
                    position = kept &+ 1
                    var value: UInt64 = 0
                    var length = 0
                    if gap < tableSize {
                        let entry = table[gap]
                        value = entry & 0x00FF_FFFF_FFFF_FFFF
                        length = Int(truncatingIfNeeded: entry &>> 56)
                    } else {
                        let (q, r) = golomb.divide(gap)
                        let (field, width) = golomb.remainderField(r)
                        if q < 32 && width <= 31 {
                            value = ((1 &<< UInt64(q)) &- 1) | (field &<< UInt64(q &+ 1))
                            length = q &+ 1 &+ width
                        }
                    }
                    if length != 0 {
                        acc |= value &<< UInt64(bits)
                        let total = bits &+ length
                        if total >= 64 {
                            if count == limit {
                                stored = count
                                grow()
                                buffer = self.words
                                limit = capacity
                            }
                            buffer[count] = acc
                            count &+= 1
                            acc = (value &>> 1) &>> UInt64(63 &- bits)
                            bits = total &- 64
                        } else {
                            bits = total
                        }
                    } else {
                        (accumulator, used, stored) = (acc, bits, count)
                        golomb.write(gap, to: &self)
                        (acc, bits, count, buffer, limit) = (accumulator, used, stored, self.words, capacity)
                    }
                }
            }
        }
        (accumulator, used, stored) = (acc, bits, count)
        golomb.write(end &- position, to: &self)
    }

    private mutating func grow() {
        let larger = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity &* 2)
        larger.moveInitialize(from: words, count: stored)
        words.deallocate()
        words = larger
        capacity &*= 2
    }

    /// Writes `count` one bits.
    mutating func writeOnes(_ count: Int) {
        var left = count
        while left >= 32 {
            write(0xFFFF_FFFF, count: 32)
            left &-= 32
        }
        write((1 &<< UInt64(left)) &- 1, count: left)
    }

    /// Writes `value` in Elias-gamma form: ⌊log₂ value⌋ zero bits, then `value` low bit last.
    ///
    /// The bits of `value` are written most significant first, so the leading one ends the zero run.
    mutating func writeGamma(_ value: UInt64) {
        precondition(value >= 1)
        let width = 64 &- value.leadingZeroBitCount
        write(0, count: width &- 1)
        write(value.bitReversed(width: width), count: width)
    }

    /// Appends the stream to `bytes`, padded with zero bits to a whole byte.
    func append(to bytes: inout [UInt8]) {
        let byteCount = (bitCount &+ 7) &>> 3
        bytes.reserveCapacity(bytes.count &+ byteCount)
        for i in 0..<stored {
            withUnsafeBytes(of: words[i].littleEndian) { bytes.append(contentsOf: $0) }
        }
        var tail = accumulator
        for _ in 0..<((used &+ 7) &>> 3) {
            bytes.append(UInt8(truncatingIfNeeded: tail))
            tail &>>= 8
        }
    }
}

extension UInt64 {
    /// The low `width` bits in reverse order (bit 0 becomes bit `width - 1`).
    @inline(__always)
    func bitReversed(width: Int) -> UInt64 {
        width == 0 ? 0 : bitReversedWord() &>> UInt64(64 &- width)
    }

    @inline(__always)
    private func bitReversedWord() -> UInt64 {
        var x = self
        x = ((x &>> 1) & 0x5555_5555_5555_5555) | ((x & 0x5555_5555_5555_5555) &<< 1)
        x = ((x &>> 2) & 0x3333_3333_3333_3333) | ((x & 0x3333_3333_3333_3333) &<< 2)
        x = ((x &>> 4) & 0x0F0F_0F0F_0F0F_0F0F) | ((x & 0x0F0F_0F0F_0F0F_0F0F) &<< 4)
        return x.byteSwapped
    }
}
