import TaskVector

/// Writes a ternary code's dense values, a mask byte (eight values) at a time and without a branch
/// per value: the decoders' output stage for tensors dense enough that a scatter of kept values into
/// a zeroed buffer costs more than writing every value once.
///
/// For a mask byte b, lane i of ``ranks`` holds 1 << r when bit i of b is the r-th set bit of b
/// (counting from 0), and 0 when it is clear. With s the next eight sign bits, lane i is kept when its
/// rank lane is non-zero and negative when `rank & s` is non-zero, so one 16-byte table load, a splat
/// and four vector operations give the byte's eight values; the sign cursor then moves by the byte's
/// popcount.
///
/// Values are the caller's bit patterns (`positive`, `negative`, zero elsewhere), stored
/// little-endian; the destination needs no alignment.
struct TernaryExpander<Bits: ExpansionLane> {
    /// `count` values of `Bits`, written little-endian.
    let destination: UnsafeMutableRawPointer
    let count: Int
    /// The sign bits of every kept value, in order (bit k of byte k / 8 for the k-th).
    let signs: UnsafeRawBufferPointer
    /// `positive` in little-endian byte order, in every lane.
    let positiveLanes: SIMD8<Bits>
    /// `positive ^ negative`, little-endian, in every lane.
    let flipLanes: SIMD8<Bits>
    let ranks: UnsafePointer<SIMD8<UInt16>>

    init(destination: UnsafeMutableRawPointer, count: Int, signs: UnsafeRawBufferPointer, positive: Bits, negative: Bits) {
        self.destination = destination
        self.count = count
        self.signs = signs
        positiveLanes = SIMD8(repeating: positive.littleEndian)
        flipLanes = SIMD8(repeating: (positive ^ negative).littleEndian)
        ranks = TernaryExpansion.ranks
    }

    /// Sign bits k, k + 1, … in the low bits (at least eight valid); bits past the signs are zero.
    @inline(__always)
    func signWord(_ k: Int) -> UInt64 {
        let byte = k &>> 3
        if byte &+ 8 <= signs.count, let base = signs.baseAddress {
            return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: byte, as: UInt64.self)) &>> UInt64(k & 7)
        }
        return tailSignWord(k)
    }

    /// ``signWord(_:)`` within the last eight sign bytes, a byte at a time.
    func tailSignWord(_ k: Int) -> UInt64 {
        let byte = k &>> 3
        var word: UInt64 = 0
        var i = byte
        while i < signs.count && i < byte &+ 8 {
            word |= UInt64(signs[i]) &<< UInt64((i &- byte) &* 8)
            i &+= 1
        }
        return word &>> UInt64(k & 7)
    }

    /// The eight values of mask byte `byte` whose first kept value has sign bits `s`.
    @inline(__always)
    func lanes(_ byte: UInt8, signs s: UInt64) -> SIMD8<Bits> {
        Bits.lanes(rank: ranks[Int(byte)], signs: s, positive: positiveLanes, flip: flipLanes)
    }

    /// Writes the values of positions `8 · firstByte ..< min(count, 8 · (firstByte + bytes))` from
    /// `bytes` mask bytes, the first kept one taking sign bit `k`.
    ///
    /// - Returns: `k` plus the set bits of the mask bytes written.
    /// - Precondition: every set bit lies below `count`, and the signs hold a bit for each.
    @inline(__always) @discardableResult
    func expand(_ mask: UnsafePointer<UInt8>, bytes: Int, firstByte: Int, keptIndex k: Int) -> Int {
        var k = k
        let size = MemoryLayout<Bits>.size
        // Whole bytes: eight values each.
        let whole = min(bytes, (count &>> 3) &- firstByte)
        var out = destination + firstByte &* 8 &* size
        var j = 0
        // While eight sign bytes remain from the cursor, two mask bytes a round and one sign load each
        // (this target has no popcount instruction: set bits come from a table).
        let popcounts = TernaryExpansion.popcounts
        if let signBase = signs.baseAddress {
            let signLimit = signs.count &- 8
            while j &+ 2 <= whole && k &>> 3 <= signLimit {
                let first = mask[j]
                let second = mask[j &+ 1]
                let s = UInt64(littleEndian: signBase.loadUnaligned(fromByteOffset: k &>> 3, as: UInt64.self)) &>> UInt64(k & 7)
                let n = Int(popcounts[Int(first)])
                out.storeBytes(of: lanes(first, signs: s), as: SIMD8<Bits>.self)
                out.storeBytes(of: lanes(second, signs: s &>> UInt64(n)), toByteOffset: 8 &* size, as: SIMD8<Bits>.self)
                k &+= n &+ Int(popcounts[Int(second)])
                out += 16 &* size
                j &+= 2
            }
        }
        while j < whole {
            let byte = mask[j]
            out.storeBytes(of: lanes(byte, signs: signWord(k)), as: SIMD8<Bits>.self)
            k &+= Int(popcounts[Int(byte)])
            out += 8 &* size
            j &+= 1
        }
        // The last, partial byte of the tensor.
        if j < bytes {
            let values = lanes(mask[j], signs: signWord(k))
            for lane in 0..<(count &- ((firstByte &+ j) &<< 3)) {
                out.storeBytes(of: values[lane], toByteOffset: lane &* size, as: Bits.self)
            }
            k &+= mask[j].nonzeroBitCount
        }
        return k
    }

    /// Writes zeros at positions `start..<end`.
    @inline(__always)
    func zero(_ start: Int, _ end: Int) {
        let size = MemoryLayout<Bits>.size
        (destination + start &* size).initializeMemory(as: UInt8.self, repeating: 0, count: (end &- start) &* size)
    }
}

package enum TernaryExpansion {
    /// Writes `count` values from a mask (⌈count/8⌉ bytes) and its sign bits: `positive` or
    /// `negative`, each rounded once to `type` (to nearest even), at set mask bits, +0 elsewhere.
    ///
    /// - Precondition: the mask has no bit set past `count`; `destination` holds `count` values of
    ///   `type`. Signs past the end of `signs` read as 0 (positive).
    package static func write(mask: UnsafeRawBufferPointer, signs: UnsafeRawBufferPointer, count: Int, positive: Float,
                              negative: Float, into destination: UnsafeMutableRawBufferPointer, as type: GapCoder.OutputType) {
        precondition(mask.count == (count + 7) / 8 && destination.count == count * type.byteSize,
                     "mask of \(mask.count) bytes and \(destination.count) output bytes for \(count) values")
        guard let maskBase = mask.baseAddress, let base = destination.baseAddress else { return }
        let bytes = maskBase.assumingMemoryBound(to: UInt8.self)
        switch type {
        case .f32:
            TernaryExpander(destination: base, count: count, signs: signs, positive: positive.bitPattern,
                            negative: negative.bitPattern).expand(bytes, bytes: mask.count, firstByte: 0, keptIndex: 0)
        case .f16:
            TernaryExpander(destination: base, count: count, signs: signs, positive: FloatConversion.f16(from: positive),
                            negative: FloatConversion.f16(from: negative)).expand(bytes, bytes: mask.count, firstByte: 0, keptIndex: 0)
        case .bf16:
            TernaryExpander(destination: base, count: count, signs: signs, positive: FloatConversion.bf16(from: positive),
                            negative: FloatConversion.bf16(from: negative)).expand(bytes, bytes: mask.count, firstByte: 0, keptIndex: 0)
        }
    }

    /// The set bits of each byte.
    nonisolated(unsafe) static let popcounts: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for byte in 0..<256 { table[byte] = UInt8(byte.nonzeroBitCount) }
        return UnsafePointer(table)
    }()

    /// For each mask byte: lane i is 1 << (set bits of the byte below bit i) when bit i is set, else 0.
    nonisolated(unsafe) static let ranks: UnsafePointer<SIMD8<UInt16>> = {
        let table = UnsafeMutablePointer<SIMD8<UInt16>>.allocate(capacity: 256)
        for byte in 0..<256 {
            var lanes = SIMD8<UInt16>()
            var rank = 0
            for i in 0..<8 where byte & (1 << i) != 0 {
                lanes[i] = 1 << rank
                rank += 1
            }
            table[byte] = lanes
        }
        return UnsafePointer(table)
    }()
}

/// A value width ``TernaryExpander`` writes. Each width spells out its lane operations on its own
/// concrete vector type: the standard library's operations generic over the scalar type compile to a
/// loop over lanes, these to a handful of vector instructions. (`Codable` because `SIMD8<Self>` is.)
protocol ExpansionLane: FixedWidthInteger, UnsignedInteger, SIMDScalar, Codable {
    /// Lane i: `positive` where `rank[i]` is non-zero, `positive ^ flip` where also `rank[i] & signs`
    /// is, 0 elsewhere.
    static func lanes(rank: SIMD8<UInt16>, signs: UInt64, positive: SIMD8<Self>, flip: SIMD8<Self>) -> SIMD8<Self>
}

extension UInt16: ExpansionLane {
    @inline(__always)
    static func lanes(rank: SIMD8<UInt16>, signs: UInt64, positive: SIMD8<UInt16>, flip: SIMD8<UInt16>) -> SIMD8<UInt16> {
        let zero = SIMD8<UInt16>()
        let s = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: signs & 0xFF))
        return positive.replacing(with: zero, where: rank .== zero) ^ flip.replacing(with: zero, where: rank & s .== zero)
    }
}

extension UInt32: ExpansionLane {
    @inline(__always)
    static func lanes(rank: SIMD8<UInt16>, signs: UInt64, positive: SIMD8<UInt32>, flip: SIMD8<UInt32>) -> SIMD8<UInt32> {
        let zero = SIMD8<UInt32>()
        let wide = SIMD8<UInt32>(truncatingIfNeeded: rank)
        let s = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: signs & 0xFF))
        return positive.replacing(with: zero, where: wide .== zero) ^ flip.replacing(with: zero, where: wide & s .== zero)
    }
}
