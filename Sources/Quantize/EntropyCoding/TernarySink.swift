/// Where the gap decoder puts kept positions: a mask, or a float buffer of ±scale.
protocol TernarySink {
    /// The k-th kept value (0-based, in position order) is at `position`.
    mutating func put(_ position: Int, keptIndex k: Int)
    /// Mask byte `byte` (non-zero) covers positions 8·byteIndex ..< 8·byteIndex + 8; its lowest set
    /// bit is the k-th kept value.
    mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int)
    /// Kept values at `position + j` for each set bit j of `pattern` (below bit 48); the lowest is the
    /// k-th kept value.
    mutating func put(pattern: UInt64, at position: Int, keptIndex k: Int)
    /// Called once after the last value.
    mutating func finish()
}

extension TernarySink {
    /// One position at a time.
    @inline(__always)
    mutating func putEach(pattern: UInt64, at position: Int, keptIndex k: Int) {
        var bits = pattern
        var k = k
        while bits != 0 {
            put(position &+ bits.trailingZeroBitCount, keptIndex: k)
            bits &= bits &- 1
            k &+= 1
        }
    }
}

/// Takes the positions and keeps nothing: the gap decoder's own checks are the point (``GapCoder/validate(_:count:nonzero:)``).
struct DiscardingSink: TernarySink {
    @inline(__always) mutating func put(_ position: Int, keptIndex k: Int) {}
    @inline(__always) mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int) {}
    @inline(__always) mutating func put(pattern: UInt64, at position: Int, keptIndex k: Int) {}
    mutating func finish() {}
}

/// Sets mask bits in a zeroed mask of ⌈count / 8⌉ bytes.
struct MaskSink: TernarySink {
    let mask: UnsafeMutablePointer<UInt8>
    /// ⌈count / 8⌉.
    let bytes: Int

    @inline(__always)
    mutating func put(pattern: UInt64, at position: Int, keptIndex k: Int) {
        let byte = position &>> 3
        guard byte &+ 8 <= bytes else { return putEach(pattern: pattern, at: position, keptIndex: k) }
        let word = UnsafeMutableRawPointer(mask + byte)
        let old = UInt64(littleEndian: word.loadUnaligned(as: UInt64.self))
        word.storeBytes(of: (old | pattern &<< UInt64(position & 7)).littleEndian, as: UInt64.self)
    }

    @inline(__always)
    mutating func put(_ position: Int, keptIndex k: Int) {
        mask[position &>> 3] |= 1 &<< UInt8(truncatingIfNeeded: position & 7)
    }

    @inline(__always)
    mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int) {
        mask[byteIndex] = byte
    }

    mutating func finish() {}
}

/// Writes +scale or −scale (as bit patterns of one width) into a buffer of `count` values, reading
/// the sign of the k-th kept value from the sign bits, and zeros everywhere else.
///
/// Zeros are written in chunks just ahead of the first value put into each chunk (positions arrive
/// in increasing order), so the scattered writes land in cache instead of on a buffer that a full
/// `memset` has already pushed out of it.
struct FloatSink<Bits: FixedWidthInteger & UnsignedInteger>: TernarySink {
    let destination: UnsafeMutableRawPointer
    let signs: UnsafeRawPointer
    let positive: Bits
    let negative: Bits
    let count: Int
    /// Positions below this are zeroed.
    var zeroed = 0

    init(destination: UnsafeMutableRawPointer, count: Int, signs: UnsafeRawPointer, positive: Bits, negative: Bits) {
        self.destination = destination
        self.count = count
        self.signs = signs
        self.positive = positive
        self.negative = negative
    }

    /// Zeroes through the 4096-value chunk holding `position`.
    @inline(never)
    mutating func zero(through position: Int) {
        let end = min(count, (position | 4095) &+ 1)
        let size = MemoryLayout<Bits>.size
        (destination + zeroed &* size).initializeMemory(as: UInt8.self, repeating: 0, count: (end &- zeroed) &* size)
        zeroed = end
    }

    mutating func finish() {
        if zeroed < count { zero(through: count - 1) }
    }

    @inline(__always)
    func sign(_ k: Int) -> Bool {
        (signs.load(fromByteOffset: k &>> 3, as: UInt8.self) &>> UInt8(truncatingIfNeeded: k & 7)) & 1 != 0
    }

    @inline(__always)
    mutating func put(_ position: Int, keptIndex k: Int) {
        if position >= zeroed { zero(through: position) }
        let value = sign(k) ? negative : positive
        destination.storeBytes(of: value.littleEndian, toByteOffset: position &* MemoryLayout<Bits>.size, as: Bits.self)
    }

    @inline(__always)
    mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int) {
        putEach(pattern: UInt64(byte), at: byteIndex &<< 3, keptIndex: k)
    }

    @inline(__always)
    mutating func put(pattern: UInt64, at position: Int, keptIndex k: Int) {
        putEach(pattern: pattern, at: position, keptIndex: k)
    }
}

/// Collects kept positions as mask bits in a chunk of ``chunkBytes`` mask bytes and writes each
/// finished chunk's values with a ``TernaryExpander``: every value is written once, eight at a time,
/// with no zero fill beforehand and no branch per value. Chunks with no kept value are zero-filled.
struct ExpandingSink<Bits: ExpansionLane>: TernarySink {
    /// Mask bytes per chunk (a multiple of the 32 bytes of a 256-position block).
    static var chunkBytes: Int { 4096 }

    let expander: TernaryExpander<Bits>
    /// ``chunkBytes`` zeroed bytes: the mask of positions chunkStart ..< chunkStart + 8 · chunkBytes.
    let chunk: UnsafeMutablePointer<UInt8>
    /// The first position of the chunk being collected.
    var chunkStart = 0
    /// The kept index of the first kept value at or after `chunkStart`.
    var signIndex = 0

    init(expander: TernaryExpander<Bits>, chunk: UnsafeMutablePointer<UInt8>) {
        self.expander = expander
        self.chunk = chunk
    }

    /// Writes the collected chunk, zero-fills the chunks up to the one holding `position`, and starts
    /// collecting that one.
    @inline(never)
    mutating func advance(to position: Int) {
        let span = Self.chunkBytes &* 8
        let bytes = min(Self.chunkBytes, (expander.count &- chunkStart &+ 7) &>> 3)
        signIndex = expander.expand(chunk, bytes: bytes, firstByte: chunkStart &>> 3, keptIndex: signIndex)
        chunk.update(repeating: 0, count: bytes)
        chunkStart &+= span
        let target = min(position, expander.count) & ~(span &- 1)
        if target > chunkStart {
            expander.zero(chunkStart, target)
            chunkStart = target
        }
    }

    @inline(__always)
    mutating func put(_ position: Int, keptIndex k: Int) {
        var offset = position &- chunkStart
        if offset >= Self.chunkBytes &* 8 {
            advance(to: position)
            offset = position &- chunkStart
        }
        chunk[offset &>> 3] |= 1 &<< UInt8(truncatingIfNeeded: offset & 7)
    }

    @inline(__always)
    mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int) {
        var offset = byteIndex &- (chunkStart &>> 3)
        if offset >= Self.chunkBytes {
            advance(to: byteIndex &<< 3)
            offset = byteIndex &- (chunkStart &>> 3)
        }
        chunk[offset] = byte
    }

    @inline(__always)
    mutating func put(pattern: UInt64, at position: Int, keptIndex k: Int) {
        let offset = position &- chunkStart
        // Eight bytes from the pattern's first must lie in the chunk (and the pattern with them).
        guard offset < (Self.chunkBytes &- 8) &* 8 else { return putEach(pattern: pattern, at: position, keptIndex: k) }
        let word = UnsafeMutableRawPointer(chunk + offset &>> 3)
        let old = UInt64(littleEndian: word.loadUnaligned(as: UInt64.self))
        word.storeBytes(of: (old | pattern &<< UInt64(offset & 7)).littleEndian, as: UInt64.self)
    }

    mutating func finish() {
        while chunkStart < expander.count { advance(to: expander.count) }
    }
}
