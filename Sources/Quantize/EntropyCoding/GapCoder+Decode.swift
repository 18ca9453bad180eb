import TaskVector

extension GapCoder {
    /// Decodes a stream written by ``encode(_:)`` back to a ternary code.
    ///
    /// The result has `count` values and `nonzero` set mask bits, with ``TernaryCode/keptCount`` equal
    /// to `nonzero` (zeros that were kept are not stored).
    ///
    /// - Parameters:
    ///   - bytes: exactly one encoded tensor; trailing bytes are an error.
    ///   - count: the number of values d, from the caller's index (at most 2^48).
    ///   - nonzero: the number of kept values n the stream must decode to.
    /// - Returns: the mask and signs.
    /// - Throws: ``QuantizeError`` naming the bit offset when the stream is truncated, malformed, has
    ///   trailing data, or decodes to a count other than `nonzero`.
    /// - Complexity: O(d + bytes.count) time; the result's ⌈d/8⌉ + ⌈n/8⌉ bytes plus a copy of the
    ///   input.
    public static func decode(_ bytes: UnsafeRawBufferPointer, count: Int, nonzero: Int) throws -> TernaryCode {
        let layout = try split(bytes, count: count, nonzero: nonzero)
        var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
        try mask.withUnsafeMutableBufferPointer { mask in
            var sink = MaskSink(mask: mask.baseAddress!, bytes: mask.count)
            try decodeRuns(layout.stream, count: count, nonzero: nonzero, blockShift: layout.blockShift, into: &sink)
        }
        return TernaryCode(count: count, keptCount: nonzero, nonzeroCount: nonzero, mask: mask, signs: Array(layout.signs))
    }

    /// Checks that a stream written by ``encode(_:)`` decodes to `nonzero` kept values among `count`, as
    /// ``decode(_:count:nonzero:)`` would, without producing them: no memory in proportion to `count`, so
    /// a tiny payload whose index entry claims a huge tensor costs nothing to check.
    ///
    /// - Throws: ``QuantizeError`` exactly where ``decode(_:count:nonzero:)`` throws.
    /// - Complexity: O(d/256 + n + bytes.count) time, O(1) memory beyond the input.
    public static func validate(_ bytes: UnsafeRawBufferPointer, count: Int, nonzero: Int) throws {
        let layout = try split(bytes, count: count, nonzero: nonzero)
        var sink = DiscardingSink()
        try decodeRuns(layout.stream, count: count, nonzero: nonzero, blockShift: layout.blockShift, into: &sink)
    }

    /// Decodes a stream written by ``encode(_:)`` straight into floats: ±`scale` at kept positions,
    /// +0 elsewhere.
    ///
    /// Value i is `scale` when position i is kept with sign bit 0, `-scale` (the same bits with the sign
    /// bit set) when kept with sign bit 1, and +0 otherwise. For ``OutputType/f16`` and
    /// ``OutputType/bf16`` the scale is rounded once, to nearest even, by ``FloatConversion``.
    /// Values are written little-endian; `destination` needs no alignment.
    ///
    /// - Parameters:
    ///   - bytes: exactly one encoded tensor.
    ///   - count: the number of values d.
    ///   - nonzero: the number of kept values n the stream must decode to.
    ///   - scale: the magnitude of every kept value.
    ///   - destination: exactly `count × type.byteSize` bytes; unspecified contents when this throws.
    ///   - type: the float format to write.
    /// - Throws: ``QuantizeError`` as ``decode(_:count:nonzero:)`` does.
    /// - Complexity: O(d + bytes.count) time; a copy of the input.
    public static func decode(_ bytes: UnsafeRawBufferPointer, count: Int, nonzero: Int, scale: Float,
                              into destination: UnsafeMutableRawBufferPointer, as type: OutputType) throws {
        precondition(count >= 0 && count <= maxCount && destination.count == count * type.byteSize,
                     "destination has \(destination.count) bytes for \(count) values of \(type)")
        let layout = try split(bytes, count: count, nonzero: nonzero)
        guard let base = destination.baseAddress else { return }
        switch type {
        case .f32:
            try decodeRuns(layout, count: count, nonzero: nonzero, into: base, positive: scale.bitPattern,
                           negative: (-scale).bitPattern)
        case .f16:
            let bits = FloatConversion.f16(from: scale)
            try decodeRuns(layout, count: count, nonzero: nonzero, into: base, positive: bits, negative: bits ^ 0x8000)
        case .bf16:
            let bits = FloatConversion.bf16(from: scale)
            try decodeRuns(layout, count: count, nonzero: nonzero, into: base, positive: bits, negative: bits ^ 0x8000)
        }
    }

    /// Decodes the runs into `count` values of `Bits` at `destination`: sparse tensors by a scatter of
    /// the kept values into zeroed memory, denser ones through mask chunks that a ``TernaryExpander``
    /// writes eight values at a time.
    static func decodeRuns<Bits: ExpansionLane>(
        _ layout: (blockShift: Int, signs: UnsafeRawBufferPointer, stream: UnsafeRawBufferPointer), count: Int,
        nonzero: Int, into destination: UnsafeMutableRawPointer, positive: Bits, negative: Bits) throws {
        if nonzero < count / expansionDensityDivisor {
            let signs = layout.signs.baseAddress ?? UnsafeRawPointer(destination)
            var sink = FloatSink<Bits>(destination: destination, count: count, signs: signs, positive: positive, negative: negative)
            try decodeRuns(layout.stream, count: count, nonzero: nonzero, blockShift: layout.blockShift, into: &sink)
            return
        }
        let chunkBytes = ExpandingSink<Bits>.chunkBytes
        let chunk = UnsafeMutablePointer<UInt8>.allocate(capacity: chunkBytes)
        defer { chunk.deallocate() }
        chunk.initialize(repeating: 0, count: chunkBytes)
        let expander = TernaryExpander(destination: destination, count: count, signs: layout.signs, positive: positive,
                                       negative: negative)
        var sink = ExpandingSink(expander: expander, chunk: chunk)
        try decodeRuns(layout.stream, count: count, nonzero: nonzero, blockShift: layout.blockShift, into: &sink)
    }

    /// Tensors with fewer than count / this many kept values are decoded by a scatter.
    static let expansionDensityDivisor = 16

    /// Checks the header and the sign bytes and splits off the run stream.
    static func split(_ bytes: UnsafeRawBufferPointer, count: Int, nonzero: Int) throws
        -> (blockShift: Int, signs: UnsafeRawBufferPointer, stream: UnsafeRawBufferPointer)
    {
        guard count >= 0 && count <= maxCount else { throw QuantizeError("gap stream: count \(count) out of range") }
        guard nonzero >= 0 && nonzero <= count else {
            throw QuantizeError("gap stream: nonzero count \(nonzero) out of range for \(count) values")
        }
        guard let header = bytes.first else { throw QuantizeError("gap stream: empty") }
        guard header >> 4 == formatVersion else {
            throw QuantizeError("gap stream: version \(header >> 4), expected \(formatVersion)")
        }
        let signBytes = (nonzero + 7) / 8
        guard bytes.count >= 1 + signBytes else {
            throw QuantizeError("gap stream: \(bytes.count) bytes, shorter than its \(signBytes) sign bytes")
        }
        let signs = UnsafeRawBufferPointer(rebasing: bytes[1..<(1 + signBytes)])
        if nonzero % 8 != 0, signs[signBytes - 1] >> UInt8(nonzero % 8) != 0 {
            throw QuantizeError("gap stream: sign bits set past the last kept value")
        }
        return (Int(header & 0x0F) + 8, signs, UnsafeRawBufferPointer(rebasing: bytes[(1 + signBytes)...]))
    }

    /// Decodes the run stream into `sink`, checking that it covers exactly `count` positions with
    /// `nonzero` kept values and ends at its last byte.
    static func decodeRuns<Sink: TernarySink>(_ stream: UnsafeRawBufferPointer, count: Int, nonzero: Int,
                                              blockShift: Int, into sink: inout Sink) throws {
        var padded = [UInt8](repeating: 0, count: stream.count + BitReader.padding)
        padded.withUnsafeMutableBytes { $0.copyMemory(from: stream) }
        try padded.withUnsafeBytes { padded in
            var reader = BitReader(base: padded.baseAddress!, bitLimit: stream.count * 8)
            let blocks = (count + (1 << blockShift) - 1) >> blockShift
            var block = 0
            var decoded = 0
            var lastIndex = [initialGolombIndex, initialHuffmanIndex]
            while block < blocks {
                let length = Int(try reader.readGamma(limit: UInt64(blocks - block), what: "run length"))
                let mode = Int(reader.read(1))
                let zigzag = Int(try reader.readGamma(limit: 1 << 20, what: "run parameter")) - 1
                let index = lastIndex[mode] + (zigzag & 1 == 0 ? zigzag >> 1 : -((zigzag + 1) >> 1))
                lastIndex[mode] = index
                let start = block << blockShift
                let end = min(count, (block + length) << blockShift)
                if mode == 1 {
                    guard ByteHuffmanCode.indices.contains(index) else {
                        throw QuantizeError("gap stream: byte code \(index) out of range at bit \(reader.position)")
                    }
                    try decodeHuffmanRun(ByteHuffmanCode.code(index), &reader, start: start, end: end, count: count,
                                         nonzero: nonzero, decoded: &decoded, into: &sink)
                } else {
                    guard GolombParameter.indices.contains(index) else {
                        throw QuantizeError("gap stream: Golomb index \(index) out of range at bit \(reader.position)")
                    }
                    try decodeGolombRun(golombParameters[index], &reader, start: start, end: end, nonzero: nonzero,
                                        decoded: &decoded, into: &sink)
                }
                block += length
            }
            sink.finish()
            guard decoded == nonzero else {
                throw QuantizeError("gap stream: decoded \(decoded) kept values, expected \(nonzero)")
            }
            guard !reader.isOverrun else { throw QuantizeError("gap stream: truncated") }
            let used = (reader.position + 7) / 8
            guard used == stream.count else {
                throw QuantizeError("gap stream: \(stream.count - used) bytes after the end of the stream")
            }
            let padBits = used * 8 - reader.position
            guard reader.peek() & ((1 << UInt64(padBits)) - 1) == 0 else {
                throw QuantizeError("gap stream: non-zero pad bits")
            }
        }
    }

    /// Decodes the gaps of one Golomb run over positions start..<end, up to its terminator.
    @inline(__always)
    static func decodeGolombRun<Sink: TernarySink>(_ golomb: GolombParameter, _ reader: inout BitReader, start: Int,
                                                   end: Int, nonzero: Int, decoded: inout Int,
                                                   into sink: inout Sink) throws {
        let m = golomb.modulus
        let shortWidth = UInt64(golomb.shortWidth)
        let shortMask: UInt64 = (1 &<< shortWidth) &- 1
        let threshold = golomb.threshold
        var next = start
        var k = decoded
        defer { decoded = k }
        // A code word of q + 1 + b ≤ 57 bits is read from one 64-bit load.
        let fastQuotients = min(32, 56 - golomb.shortWidth)
        let table = GolombTable.table(golomb.index)
        let windowMask: UInt64 = (1 &<< UInt64(GolombTable.windowBits)) &- 1
        while true {
            if let table {
                // Every code word inside the next window at once, while they stay inside the run and
                // within the kept count; the last gap of a run (its terminator) goes the single way.
                let entry = table[Int(truncatingIfNeeded: reader.peek() & windowMask)]
                let advance = Int(truncatingIfNeeded: (entry &>> 54) & 63)
                let pattern = entry & ((1 &<< 48) &- 1)
                let n = Int(truncatingIfNeeded: (entry &>> 48) & 63)
                if advance != 0 && next &+ advance <= end && k &+ n <= nonzero {
                    sink.put(pattern: pattern, at: next, keptIndex: k)
                    reader.position &+= Int(truncatingIfNeeded: entry &>> 60)
                    guard !reader.isOverrun else {
                        throw QuantizeError("gap stream: truncated in a gap at bit \(reader.position)")
                    }
                    k &+= n
                    next &+= advance
                    continue
                }
            }
            var word = reader.peek()
            var quotient = (~word).trailingZeroBitCount
            if quotient < fastQuotients {
                word &>>= UInt64(quotient &+ 1)
                reader.position &+= quotient &+ 1
            } else {
                quotient = try readLongUnary(&reader, limit: (end - next) / m)
                word = reader.peek()
            }
            let x = Int(truncatingIfNeeded: word & shortMask)
            let long = x >= threshold
            let extra = Int(truncatingIfNeeded: (word &>> shortWidth) & 1)
            let remainder = long ? (x &<< 1) &+ extra &- threshold : x
            reader.position &+= golomb.shortWidth &+ (long ? 1 : 0)
            let position = next &+ quotient &* m &+ remainder
            guard !reader.isOverrun else { throw QuantizeError("gap stream: truncated in a gap at bit \(reader.position)") }
            if position >= end {
                if position == end { return }
                throw QuantizeError("gap stream: gap runs past position \(end) at bit \(reader.position)")
            }
            guard k < nonzero else {
                throw QuantizeError("gap stream: more than \(nonzero) kept values at bit \(reader.position)")
            }
            sink.put(position, keptIndex: k)
            k &+= 1
            next = position &+ 1
        }
    }

    /// Reads a unary quotient of any length and its closing zero, at most `limit` ones.
    @inline(never)
    static func readLongUnary(_ reader: inout BitReader, limit: Int) throws -> Int {
        var quotient = 0
        while true {
            let valid = 64 - (reader.position & 7)
            let ones = (~reader.peek()).trailingZeroBitCount
            if ones < valid {
                quotient += ones
                reader.position += ones + 1
                break
            }
            quotient += valid
            reader.position += valid
            guard !reader.isOverrun else { throw QuantizeError("gap stream: truncated in a gap at bit \(reader.position)") }
            guard quotient <= limit else { break }
        }
        guard quotient <= limit else { throw QuantizeError("gap stream: gap runs past its run at bit \(reader.position)") }
        return quotient
    }

    /// Decodes the mask bytes of one byte-Huffman run over positions start..<end.
    @inline(__always)
    static func decodeHuffmanRun<Sink: TernarySink>(_ code: ByteHuffmanCode, _ reader: inout BitReader, start: Int,
                                                    end: Int, count: Int, nonzero: Int, decoded: inout Int,
                                                    into sink: inout Sink) throws {
        var k = decoded
        defer { decoded = k }
        let popcounts = TernaryExpansion.popcounts
        try code.fastTable.withUnsafeBufferPointer { table in
            let fastMask = UInt64(table.count - 1)
            for byteIndex in (start >> 3)..<((end + 7) >> 3) {
                let entry = table[Int(truncatingIfNeeded: reader.peek() & fastMask)]
                let byte: UInt8
                if entry != 0 {
                    byte = UInt8(truncatingIfNeeded: entry)
                    reader.position &+= Int(entry &>> 8)
                } else {
                    byte = try code.decodeSlow(&reader)
                }
                guard !reader.isOverrun else {
                    throw QuantizeError("gap stream: truncated in a mask byte at bit \(reader.position)")
                }
                guard byte != 0 else { continue }
                let kept = Int(popcounts[Int(byte)])
                guard k &+ kept <= nonzero else {
                    throw QuantizeError("gap stream: more than \(nonzero) kept values at bit \(reader.position)")
                }
                if byteIndex == count >> 3 && byte >> UInt8(count & 7) != 0 {
                    throw QuantizeError("gap stream: mask bits past the last value at bit \(reader.position)")
                }
                sink.put(byte: byte, at: byteIndex, keptIndex: k)
                k &+= kept
            }
        }
    }
}
