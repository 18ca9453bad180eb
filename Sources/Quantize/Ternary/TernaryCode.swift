public import TaskVector

/// A ternary (or sparse) tensor as bits: which positions are non-zero, and their signs or values.
///
/// `mask` has one bit per value, least significant bit first within each byte; bit i is set when
/// value i is kept and non-zero. `signs` has one bit per set mask bit, in position order, 1 for
/// negative. For sparse storage `values` holds the kept non-zero residuals in position order instead.
public struct TernaryCode: Sendable, Equatable {
    public var count: Int
    /// Values with |τ| ≥ t, zeros included.
    public var keptCount: Int
    /// Set bits in `mask`.
    public var nonzeroCount: Int
    public var mask: [UInt8]
    public var signs: [UInt8]
    public var values: [Float]

    public init(count: Int, keptCount: Int, nonzeroCount: Int, mask: [UInt8], signs: [UInt8], values: [Float] = []) {
        self.count = count
        self.keptCount = keptCount
        self.nonzeroCount = nonzeroCount
        self.mask = mask
        self.signs = signs
        self.values = values
    }

    /// Codes one tensor's residual: kept iff |τ| bit pattern ≥ `thresholdBits`.
    ///
    /// Works eight values at a time: one mask byte and the signs of its set bits (compacted through a
    /// 64 KiB table, a software `pext`), appended to a 64-bit sign accumulator.
    ///
    /// - Parameter keepValues: store the kept residual values (sparse / prune) instead of signs only.
    public static func encode(_ tensor: SourceTensor, thresholdBits: UInt32, keepValues: Bool,
                              chunks: borrowing ResidualChunks) -> TernaryCode {
        if !keepValues && thresholdBits != 0 {
            return encodeSigns(tensor, thresholdBits: thresholdBits, chunks: chunks)
        }
        let n = tensor.count
        var mask = [UInt8](repeating: 0, count: (n + 7) / 8)
        var signs: [UInt8] = []
        signs.reserveCapacity(n / 40 + 16)
        var values: [Float] = []
        var kept = 0
        var nonzero = 0
        var signAccumulator: UInt64 = 0
        var signBits = 0
        let table = SignCompaction.table
        mask.withUnsafeMutableBufferPointer { maskBytes in
            chunks.forEach(tensor) { offset, chunk in
                // Chunks start at multiples of 8 (the chunk size is), so each chunk fills whole mask bytes.
                var j = 0
                let count = chunk.count
                while j < count {
                    let m: UInt8
                    let neg: UInt8
                    let zerosKept: Int
                    if count &- j >= 8 {
                        // Branch-free: kept-and-non-zero ⇔ magnitude ≥ max(t, 1) ⇔ the sign bit of
                        // (floor − 1 − magnitude) is set (both sides are below 2³¹).
                        let p = UnsafeRawPointer(chunk.baseAddress! + j).assumingMemoryBound(to: UInt32.self)
                        let below = max(thresholdBits, 1) &- 1
                        var mm: UInt32 = 0
                        var nn: UInt32 = 0
                        for b in 0..<8 {
                            let bits = p[b]
                            mm |= ((below &- (bits & 0x7FFF_FFFF)) &>> 31) &<< UInt32(b)
                            nn |= (bits &>> 31) &<< UInt32(b)
                        }
                        m = UInt8(truncatingIfNeeded: mm)
                        neg = UInt8(truncatingIfNeeded: nn)
                        if thresholdBits == 0 {
                            var zeros = 0
                            for b in 0..<8 { zeros &+= p[b] & 0x7FFF_FFFF == 0 ? 1 : 0 }
                            zerosKept = zeros
                        } else {
                            zerosKept = 0
                        }
                    } else {
                        var mm: UInt8 = 0
                        var nn: UInt8 = 0
                        var zk = 0
                        for b in 0..<(count &- j) {
                            let bits = chunk[j &+ b].bitPattern
                            let magnitude = bits & 0x7FFF_FFFF
                            let keep = magnitude >= thresholdBits
                            zk &+= (keep && magnitude == 0) ? 1 : 0
                            mm |= ((keep && magnitude != 0) ? 1 : 0) &<< UInt8(b)
                            nn |= UInt8(truncatingIfNeeded: bits &>> 31) &<< UInt8(b)
                        }
                        (m, neg, zerosKept) = (mm, nn, zk)
                    }
                    if m != 0 {
                        let setBits = m.nonzeroBitCount
                        maskBytes[(offset &+ j) &>> 3] = m
                        if keepValues {
                            var mm = m
                            while mm != 0 {
                                values.append(chunk[j &+ mm.trailingZeroBitCount])
                                mm &= mm &- 1
                            }
                        } else {
                            let compact = UInt64(table[Int(m) &<< 8 | Int(neg)])
                            signAccumulator |= compact &<< UInt64(signBits)
                            signBits &+= setBits
                            if signBits >= 56 {
                                for _ in 0..<7 {
                                    signs.append(UInt8(truncatingIfNeeded: signAccumulator))
                                    signAccumulator &>>= 8
                                }
                                signBits &-= 56
                            }
                        }
                        nonzero &+= setBits
                        kept &+= setBits
                    }
                    kept &+= zerosKept
                    j &+= 8
                }
            }
        }
        while signBits > 0 {
            signs.append(UInt8(truncatingIfNeeded: signAccumulator))
            signAccumulator &>>= 8
            signBits -= 8
        }
        if keepValues { signs = [] }
        return TernaryCode(count: n, keptCount: kept, nonzeroCount: nonzero, mask: mask, signs: signs, values: values)
    }

    /// The common case of ``encode(_:thresholdBits:keepValues:chunks:)``: signs only, threshold above
    /// zero (so no kept value is zero), sixteen values a step.
    ///
    /// Each step compares sixteen magnitudes at once (`SIMD16<UInt32>`), narrows the 0/1 lanes to bytes
    /// and gathers each group of eight into a mask byte with one multiplication; the signs of the kept
    /// values are compacted through ``SignCompaction/table`` into a 64-bit accumulator written to a
    /// preallocated buffer. The general loop above is the reference the tests compare this with.
    static func encodeSigns(_ tensor: SourceTensor, thresholdBits: UInt32,
                            chunks: borrowing ResidualChunks) -> TernaryCode {
        precondition(thresholdBits != 0)
        let n = tensor.count
        var mask = [UInt8](repeating: 0, count: (n + 7) / 8)
        // At most one sign bit per value, plus room for the 8-byte stores of the accumulator.
        let signCapacity = (n + 7) / 8 + 8
        let signBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: signCapacity, alignment: 8)
        defer { signBuffer.deallocate() }
        var signBytes = 0
        var accumulator: UInt64 = 0
        var pending = 0
        var nonzero = 0
        let table = SignCompaction.table
        table.withUnsafeBufferPointer { table in
        mask.withUnsafeMutableBytes { maskBytes in
            let below = thresholdBits &- 1
            let belowLanes = SIMD16<UInt32>(repeating: below)
            let magnitudeMask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
            // Eight 0/1 bytes, little-endian in a word, times this: the eight bits land in the top byte.
            let gather: UInt64 = 0x0102_0408_1020_4080
            let out = signBuffer.baseAddress!
            chunks.forEach(tensor) { offset, chunk in
                // Chunks start at multiples of 16 (the chunk size is), so steps fill whole mask bytes.
                let raw = UnsafeRawPointer(chunk.baseAddress!)
                let count = chunk.count
                var j = 0
                while j < count {
                    let m: UInt16
                    let neg: UInt16
                    let lowCount: Int
                    let setBits: Int
                    if count &- j >= 16 {
                        let bits = raw.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<UInt32>.self)
                        // kept ⇔ magnitude ≥ t ⇔ the sign bit of (t − 1 − magnitude) is set.
                        let keep = SIMD16<UInt8>(truncatingIfNeeded: (belowLanes &- (bits & magnitudeMask)) &>> 31)
                        let negative = SIMD16<UInt8>(truncatingIfNeeded: bits &>> 31)
                        let k = unsafeBitCast(keep, to: SIMD2<UInt64>.self)
                        let s = unsafeBitCast(negative, to: SIMD2<UInt64>.self)
                        m = UInt16(truncatingIfNeeded: (k[0] &* gather) &>> 56 | ((k[1] &* gather) &>> 56) &<< 8)
                        neg = UInt16(truncatingIfNeeded: (s[0] &* gather) &>> 56 | ((s[1] &* gather) &>> 56) &<< 8)
                        // Set bits by summing the 0/1 bytes with one multiplication each: the baseline
                        // x86-64 target has no popcnt instruction, and its emulation costs more.
                        let sum: UInt64 = 0x0101_0101_0101_0101
                        lowCount = Int(truncatingIfNeeded: (k[0] &* sum) &>> 56)
                        setBits = lowCount &+ Int(truncatingIfNeeded: (k[1] &* sum) &>> 56)
                    } else {
                        var mm: UInt16 = 0
                        var nn: UInt16 = 0
                        for b in 0..<(count &- j) {
                            let bits = chunk[j &+ b].bitPattern
                            mm |= (bits & 0x7FFF_FFFF >= thresholdBits ? 1 : 0) &<< UInt16(b)
                            nn |= UInt16(truncatingIfNeeded: bits &>> 31) &<< UInt16(b)
                        }
                        (m, neg) = (mm, nn)
                        lowCount = (mm & 0xFF).nonzeroBitCount
                        setBits = mm.nonzeroBitCount
                    }
                    // No test for an empty step: at typical densities whether sixteen values keep
                    // none is a coin toss, and the work below is cheaper than a mispredicted branch.
                    let at = (offset &+ j) &>> 3
                    if count &- j > 8 {
                        maskBytes.storeBytes(of: m.littleEndian, toByteOffset: at, as: UInt16.self)
                    } else {
                        maskBytes[at] = UInt8(truncatingIfNeeded: m)
                    }
                    let low = Int(m & 0xFF)
                    let high = Int(m &>> 8)
                    let lowSigns = UInt64(table[low &<< 8 | Int(neg & 0xFF)])
                    let highSigns = UInt64(table[high &<< 8 | Int(neg &>> 8)])
                    accumulator |= (lowSigns | highSigns &<< UInt64(lowCount)) &<< UInt64(pending)
                    pending &+= setBits
                    nonzero &+= setBits
                    if pending >= 32 {
                        (out + signBytes).storeBytes(of: accumulator.littleEndian, as: UInt64.self)
                        signBytes &+= 4
                        accumulator &>>= 32
                        pending &-= 32
                    }
                    j &+= 16
                }
            }
            (out + signBytes).storeBytes(of: accumulator.littleEndian, as: UInt64.self)
        }
        }
        signBytes += (pending + 7) / 8
        let signs = [UInt8](UnsafeRawBufferPointer(rebasing: signBuffer[0..<signBytes]))
        return TernaryCode(count: n, keptCount: nonzero, nonzeroCount: nonzero, mask: mask, signs: signs)
    }

    /// Calls `body(index, value)` for every kept non-zero position in order: `value` is ±1 for a
    /// ternary code (multiply by the scale) and the stored residual for a sparse one.
    @inlinable
    public func forEachKept(_ body: (Int, Float) throws -> Void) rethrows {
        var k = 0
        for byteIndex in mask.indices {
            var byte = mask[byteIndex]
            while byte != 0 {
                let i = byteIndex &* 8 &+ byte.trailingZeroBitCount
                byte &= byte &- 1
                if values.isEmpty {
                    let negative = (signs[k &>> 3] &>> UInt8(k & 7)) & 1 == 1
                    try body(i, negative ? -1 : 1)
                } else {
                    try body(i, values[k])
                }
                k &+= 1
            }
        }
    }

    /// Adds the decoded residual (±scale or the kept values) to `destination`, leaving other positions.
    public func accumulate(scale: Float, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == count)
        forEachKept { i, v in destination[i] += values.isEmpty ? v * scale : v }
    }

    /// Writes the decoded residual (±scale, the kept values, or 0) into `destination`.
    ///
    /// - Precondition: `destination.count == count`.
    public func decode(scale: Float, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == count)
        destination.update(repeating: 0)
        var k = 0
        for byteIndex in mask.indices {
            var byte = mask[byteIndex]
            while byte != 0 {
                let bit = byte.trailingZeroBitCount
                byte &= byte &- 1
                let i = byteIndex &* 8 &+ bit
                if values.isEmpty {
                    let negative = (signs[k &>> 3] &>> UInt8(k & 7)) & 1 == 1
                    destination[i] = negative ? -scale : scale
                } else {
                    destination[i] = values[k]
                }
                k &+= 1
            }
        }
    }
}

/// `pext` for one byte: the bits of `value` at the set positions of `mask`, packed to the bottom.
enum SignCompaction {
    /// Entry `mask << 8 | value`.
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 1 << 16)
        for mask in 0..<256 {
            for value in 0..<256 {
                var out = 0
                var k = 0
                for bit in 0..<8 where mask & (1 << bit) != 0 {
                    out |= ((value >> bit) & 1) << k
                    k += 1
                }
                t[mask << 8 | value] = UInt8(out)
            }
        }
        return t
    }()
}
