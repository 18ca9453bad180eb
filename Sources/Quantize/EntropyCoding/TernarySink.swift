/// Where the gap decoder puts kept positions: a mask, or a float buffer of ±scale.
protocol TernarySink {
    /// The k-th kept value (0-based, in position order) is at `position`.
    mutating func put(_ position: Int, keptIndex k: Int)
    /// Mask byte `byte` (non-zero) covers positions 8·byteIndex ..< 8·byteIndex + 8; its lowest set
    /// bit is the k-th kept value.
    mutating func put(byte: UInt8, at byteIndex: Int, keptIndex k: Int)
    /// Called once after the last value.
    mutating func finish()
}

/// Sets mask bits in a zeroed mask of ⌈count / 8⌉ bytes.
struct MaskSink: TernarySink {
    let mask: UnsafeMutablePointer<UInt8>

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
        var bits = byte
        var k = k
        while bits != 0 {
            put(byteIndex &<< 3 | bits.trailingZeroBitCount, keptIndex: k)
            bits &= bits &- 1
            k &+= 1
        }
    }
}
