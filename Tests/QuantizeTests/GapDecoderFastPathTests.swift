import Testing
import TaskVector
@testable import Quantize

/// The decoder's fast paths against plain references: the multi-code-word Golomb tables, the
/// mask-chunk output stage (``ExpandingSink``, ``TernaryExpander``) and ``TernaryExpansion/write``.
@Suite struct GapDecoderFastPathTests {
    /// Value i of `plain` as little-endian bytes of `type`: the bit patterns of `scale` and `-scale`
    /// that ``GapCoder/decode(_:count:nonzero:scale:into:as:)`` documents, +0 elsewhere.
    static func expected(_ plain: PlainTernary, scale: Float, as type: GapCoder.OutputType) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(plain.count * type.byteSize)
        for i in 0..<plain.count {
            let value: Float = plain.kept[i] ? (plain.negative[i] ? -scale : scale) : 0
            switch type {
            case .f32: withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
            case .f16: withUnsafeBytes(of: FloatConversion.f16(from: value).littleEndian) { out += $0 }
            case .bf16: withUnsafeBytes(of: FloatConversion.bf16(from: value).littleEndian) { out += $0 }
            }
        }
        return out
    }

    static func floatDecode(_ bytes: [UInt8], count: Int, nonzero: Int, scale: Float, as type: GapCoder.OutputType) throws -> [UInt8] {
        var out = [UInt8](repeating: 0xAB, count: count * type.byteSize)
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { try GapCoder.decode(src, count: count, nonzero: nonzero, scale: scale, into: $0, as: type) }
        }
        return out
    }

    func check(_ plain: PlainTernary, _ label: String, scale: Float = 0.0123) throws {
        let code = plain.code
        let bytes = GapCoder.encode(code)
        for type in GapCoder.OutputType.allCases {
            let out = try Self.floatDecode(bytes, count: code.count, nonzero: code.nonzeroCount, scale: scale, as: type)
            #expect(out == Self.expected(plain, scale: scale, as: type), "\(label) \(type)")
        }
        let mask = try bytes.withUnsafeBytes { try GapCoder.decode($0, count: code.count, nonzero: code.nonzeroCount) }
        #expect(mask.mask == code.mask && mask.signs == code.signs, "\(label): mask decode")
    }

    /// Densities from the scatter/expansion switch (1/16) up, so every Golomb table (m = 1 … 32) and
    /// the byte-Huffman runs feed the chunked output; counts on and around the 32,768-position chunks.
    @Test func denseDecodesMatchTheReference() throws {
        let densities = [0.02, 0.0625, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.9, 1.0]
        for (c, count) in [1, 9, 255, 256, 257, 4096, 32767, 32768, 32769, 65536, 100_003].enumerated() {
            for (d, density) in densities.enumerated() {
                let seed = UInt64(1000 * c + d)
                try check(.random(count: count, density: density, seed: seed), "count \(count) p \(density) seed \(seed)")
            }
        }
    }

    @Test func denseDecodesOfAdversarialMasksMatchTheReference() throws {
        func plain(_ count: Int, _ isKept: (Int) -> Bool) -> PlainTernary {
            PlainTernary(kept: (0..<count).map(isKept), negative: (0..<count).map { ($0 / 3) % 2 == 0 })
        }
        let chunk = ExpandingSink<UInt16>.chunkBytes * 8
        for count in [0, 1, 8, 255, 257, chunk - 1, chunk, chunk + 1, 3 * chunk + 13] {
            try check(plain(count) { _ in true }, "all kept, \(count)")
            try check(plain(count) { _ in false }, "none kept, \(count)")
            try check(plain(count) { $0 == count - 1 }, "last kept, \(count)")
            try check(plain(count) { $0 % 2 == 1 }, "alternating, \(count)")
            try check(plain(count) { $0 % 8 == 0 || $0 == count - 1 }, "every eighth and the last, \(count)")
            // Kept values on both sides of every chunk edge and 256-position block edge, among others
            // dense enough for the chunked path.
            try check(plain(count) { $0 % chunk >= chunk - 3 || $0 % chunk < 3 || $0 % 256 == 255 || $0 % 256 == 0 || $0 % 5 == 0 },
                      "edges, \(count)")
            // Runs of every gap length 0 … 70 (every length class of every table, and words longer
            // than a window or a pattern).
            var kept = [Bool]()
            var gap = 0
            while kept.count < count {
                kept += [Bool](repeating: false, count: min(gap, count - kept.count))
                if kept.count < count { kept.append(true) }
                gap = (gap + 1) % 71
            }
            try check(PlainTernary(kept: kept, negative: (0..<count).map { $0 % 7 < 3 }), "every gap length, \(count)")
        }
        // Dense blocks beside empty chunks: zero-filled chunks between expanded ones.
        try check(plain(5 * chunk + 77) { ($0 / chunk) % 2 == 0 ? $0 % 3 == 0 : false }, "empty chunks between dense ones")
        try check(plain(5 * chunk + 77) { $0 >= 4 * chunk ? $0 % 2 == 0 : $0 == 7 }, "one value, then a dense tail")
        try check(.clustered(rows: 96, width: 1024, seed: 21), "clustered")
        // Scale 0 and a negative scale keep the documented bit patterns.
        try check(.random(count: 3000, density: 0.3, seed: 4), "scale 0", scale: 0)
        try check(.random(count: 3000, density: 0.3, seed: 5), "negative scale", scale: -2.5)
    }

    /// Every entry of every table, against the encoder: the gaps its pattern names, written by
    /// ``GolombParameter/write(_:to:)``, are the window's first `bits` bits, and no further code word
    /// both fits the window and stays inside the pattern.
    @Test func golombTableEntriesAreTheGreedyDecodingOfTheirWindow() throws {
        let window = GolombTable.windowBits
        for index in GolombTable.indices {
            let golomb = GolombParameter(index: index)
            let table = try #require(GolombTable.table(index))
            for bits in 0..<(1 << window) {
                let entry = table[bits]
                let pattern = entry & ((1 << 48) - 1)
                #expect(Int((entry >> 48) & 63) == pattern.nonzeroBitCount, "index \(index) window \(bits): kept")
                let advance = Int((entry >> 54) & 63)
                let used = Int(entry >> 60)
                var gaps: [Int] = []
                var last = -1
                var p = pattern
                while p != 0 {
                    let at = p.trailingZeroBitCount
                    gaps.append(at - last - 1)
                    last = at
                    p &= p - 1
                }
                #expect(advance == last + 1, "index \(index) window \(bits): advance")
                var writer = BitWriter()
                for g in gaps { golomb.write(g, to: &writer) }
                #expect(writer.bitCount == used, "index \(index) window \(bits): bits")
                var written: [UInt8] = []
                writer.append(to: &written)
                var value = 0
                for (i, byte) in written.enumerated() { value |= Int(byte) << (8 * i) }
                #expect(value & ((1 << used) - 1) == bits & ((1 << used) - 1), "index \(index) window \(bits): code words")
                // Maximal: the one gap whose code word is a prefix of the rest fits neither window nor pattern.
                for g in 0..<(window * golomb.modulus + golomb.modulus) where used + golomb.length(g) <= window {
                    var w = BitWriter()
                    golomb.write(g, to: &w)
                    var b: [UInt8] = []
                    w.append(to: &b)
                    var code = 0
                    for (i, byte) in b.enumerated() { code |= Int(byte) << (8 * i) }
                    let length = golomb.length(g)
                    if (bits >> used) & ((1 << length) - 1) == code {
                        #expect(advance + g + 1 > GolombTable.patternBits, "index \(index) window \(bits): gap \(g) left undecoded")
                    }
                }
            }
        }
    }

    @Test func expansionOfMaskAndSignsMatchesTheReference() {
        var rng = SeededGenerator(seed: 17)
        for count in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4097] {
            for density in [0.0, 0.05, 0.5, 1.0] {
                let plain = PlainTernary.random(count: count, density: density, seed: rng.next())
                let code = plain.code
                for type in GapCoder.OutputType.allCases {
                    let scale: Float = 0.75
                    var out = [UInt8](repeating: 0xCD, count: count * type.byteSize)
                    code.mask.withUnsafeBytes { mask in
                        code.signs.withUnsafeBytes { signs in
                            out.withUnsafeMutableBytes {
                                TernaryExpansion.write(mask: mask, signs: signs, count: count, positive: scale, negative: -scale,
                                                       into: $0, as: type)
                            }
                        }
                    }
                    #expect(out == Self.expected(plain, scale: scale, as: type), "count \(count) p \(density) \(type)")
                }
            }
        }
    }
}
