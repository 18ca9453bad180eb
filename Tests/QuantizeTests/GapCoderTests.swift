import Testing
import TaskVector
@testable import Quantize

/// SplitMix64: a small seeded generator, so every mask here is reproducible from its seed.
/// The shared SplitMix64, so every mask here is reproducible from its seed.
typealias SeededGenerator = SplitMix64


/// A ternary tensor as plain booleans, the reference every coder result is compared with.
struct PlainTernary {
    var kept: [Bool]
    var negative: [Bool]  // meaningful where kept

    var count: Int { kept.count }
    var nonzero: Int { kept.lazy.filter { $0 }.count }

    /// Packs into the ``TernaryCode`` layout with plain loops.
    var code: TernaryCode {
        var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
        var signs = [UInt8](repeating: 0, count: (nonzero + 7) / 8)
        var k = 0
        for i in 0..<count where kept[i] {
            mask[i / 8] |= 1 << UInt8(i % 8)
            if negative[i] { signs[k / 8] |= 1 << UInt8(k % 8) }
            k += 1
        }
        return TernaryCode(count: count, keptCount: k, nonzeroCount: k, mask: mask, signs: signs)
    }

    /// Unpacks a ``TernaryCode`` with plain loops.
    init(_ code: TernaryCode) {
        kept = (0..<code.count).map { code.mask[$0 / 8] >> UInt8($0 % 8) & 1 == 1 }
        negative = [Bool](repeating: false, count: code.count)
        var k = 0
        for i in 0..<code.count where kept[i] {
            negative[i] = code.signs[k / 8] >> UInt8(k % 8) & 1 == 1
            k += 1
        }
    }

    init(kept: [Bool], negative: [Bool]) {
        self.kept = kept
        self.negative = negative
    }

    /// Each position kept with probability `density`, signs fair coins.
    static func random(count: Int, density: Double, seed: UInt64) -> PlainTernary {
        var rng = SeededGenerator(seed: seed)
        let kept = (0..<count).map { _ in Double.random(in: 0..<1, using: &rng) < density }
        let negative = (0..<count).map { _ in Bool.random(using: &rng) }
        return PlainTernary(kept: kept, negative: negative)
    }

    /// Exactly n positions kept, uniformly at random (what top-k of an iid residual gives).
    static func topK(count: Int, nonzero: Int, seed: UInt64) -> PlainTernary {
        var rng = SeededGenerator(seed: seed)
        var order = Array(0..<count)
        for i in 0..<nonzero {
            order.swapAt(i, Int.random(in: i..<count, using: &rng))
        }
        var kept = [Bool](repeating: false, count: count)
        for i in order[..<nonzero] { kept[i] = true }
        let negative = (0..<count).map { _ in Bool.random(using: &rng) }
        return PlainTernary(kept: kept, negative: negative)
    }

    /// Rows of `width` whose densities are skewed (many near-empty rows, a few dense), plus a few
    /// dense columns: the shape of real adapter masks.
    static func clustered(rows: Int, width: Int, seed: UInt64) -> PlainTernary {
        var rng = SeededGenerator(seed: seed)
        let denseColumns = Set((0..<max(1, width / 64)).map { _ in Int.random(in: 0..<width, using: &rng) })
        var kept: [Bool] = []
        kept.reserveCapacity(rows * width)
        for _ in 0..<rows {
            let u = Double.random(in: 0..<1, using: &rng)
            let density = u < 0.2 ? 0.0005 : 0.01 + 0.8 * u * u * u * u
            for c in 0..<width {
                let p = denseColumns.contains(c) ? 0.8 : density
                kept.append(Double.random(in: 0..<1, using: &rng) < p)
            }
        }
        let negative = kept.map { _ in Bool.random(using: &rng) }
        return PlainTernary(kept: kept, negative: negative)
    }
}

func roundTrip(_ plain: PlainTernary, _ label: String) throws {
    let code = plain.code
    let bytes = GapCoder.encode(code)
    let decoded = try bytes.withUnsafeBytes {
        try GapCoder.decode($0, count: code.count, nonzero: code.nonzeroCount)
    }
    let back = PlainTernary(decoded)
    #expect(back.kept == plain.kept, "\(label): mask differs")
    #expect(back.kept.indices.allSatisfy { !plain.kept[$0] || back.negative[$0] == plain.negative[$0] },
            "\(label): signs differ")
    #expect(decoded.nonzeroCount == code.nonzeroCount && decoded.count == code.count, "\(label)")
}

@Suite struct GapCoderTests {
    static let counts = [0, 1, 2, 7, 8, 9, 63, 64, 65, 4095, 4096, 4097, 100_000]
    static let densities = [0.0, 0.0005, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.95, 0.999, 1.0]

    @Test(arguments: counts)
    func roundTripMatchesReferenceAtEveryDensity(count: Int) throws {
        for (i, density) in Self.densities.enumerated() {
            let seed = UInt64(count * 100 + i)
            try roundTrip(.random(count: count, density: density, seed: seed), "count \(count) p \(density) seed \(seed)")
        }
    }

    @Test func roundTripKeepsAdversarialMasks() throws {
        func plain(_ count: Int, _ isKept: (Int) -> Bool) -> PlainTernary {
            PlainTernary(kept: (0..<count).map(isKept), negative: (0..<count).map { $0 % 3 == 0 })
        }
        for count in [1, 8, 4096, 4097, 100_000] {
            try roundTrip(plain(count) { _ in true }, "all kept, \(count)")
            try roundTrip(plain(count) { _ in false }, "none kept, \(count)")
            try roundTrip(plain(count) { $0 == count - 1 }, "last kept, \(count)")
            try roundTrip(plain(count) { $0 == 0 }, "first kept, \(count)")
            try roundTrip(plain(count) { $0 % 2 == 1 }, "alternating, \(count)")
            try roundTrip(plain(count) { $0 % 4 < 2 }, "pairs, \(count)")
            try roundTrip(plain(count) { $0 % 4096 == 4095 || $0 % 4096 == 0 }, "block edges, \(count)")
        }
        try roundTrip(plain(1_000_001) { $0 == 1_000_000 }, "10^6 zeros then one")
        try roundTrip(plain(3_000_000) { $0 == 5 || $0 == 2_999_999 }, "long gap between two")
        // Dense blocks next to empty ones: forces Huffman and Golomb runs with terminators.
        try roundTrip(plain(64 * 4096) { ($0 >> 12) % 3 == 0 ? $0 % 7 != 0 : ($0 >> 12) % 3 == 1 ? false : $0 % 97 == 0 },
                      "alternating dense, empty and sparse blocks")
        try roundTrip(.clustered(rows: 64, width: 768, seed: 7), "clustered")
    }

    @Test(arguments: GapCoder.OutputType.allCases)
    func floatDecodeMatchesReferenceExpansion(type: GapCoder.OutputType) throws {
        for (count, density, scale) in [(0, 0.1, Float(1)), (9, 0.5, 0.25), (4097, 0.1, 0.0123), (100_000, 0.02, 3e-5),
                                        (100_000, 0.4, -7.5), (70_000, 0.97, Float.leastNormalMagnitude / 4)] {
            let plain = PlainTernary.random(count: count, density: density, seed: UInt64(count) + 11)
            let code = plain.code
            let bytes = GapCoder.encode(code)
            var out = [UInt8](repeating: 0xAB, count: count * type.byteSize)
            try bytes.withUnsafeBytes { src in
                try out.withUnsafeMutableBytes { dst in
                    try GapCoder.decode(src, count: count, nonzero: code.nonzeroCount, scale: scale, into: dst, as: type)
                }
            }
            var expected: [UInt8] = []
            for i in 0..<count {
                let value: Float = plain.kept[i] ? (plain.negative[i] ? -scale : scale) : 0
                switch type {
                case .f32: withUnsafeBytes(of: value.bitPattern.littleEndian) { expected += $0 }
                case .f16: withUnsafeBytes(of: FloatConversion.f16(from: value).littleEndian) { expected += $0 }
                case .bf16: withUnsafeBytes(of: FloatConversion.bf16(from: value).littleEndian) { expected += $0 }
                }
            }
            #expect(out == expected, "\(type) count \(count) p \(density) scale \(scale)")
        }
    }

    @Test func everyPrefixThrowsOrKeepsCounts() throws {
        for (count, density) in [(300, 0.1), (300, 0.45), (5000, 0.02)] {
            let code = PlainTernary.random(count: count, density: density, seed: 3).code
            let bytes = GapCoder.encode(code)
            for length in 0..<bytes.count {
                try checkHostile(Array(bytes[..<length]), code, "prefix \(length) of \(bytes.count)")
            }
            try checkHostile(bytes + [0], code, "one trailing byte")
            #expect(throws: QuantizeError.self) {
                try (bytes + [0]).withUnsafeBytes { try GapCoder.decode($0, count: count, nonzero: code.nonzeroCount) }
            }
        }
    }

    @Test func corruptedStreamsThrowOrKeepCounts() throws {
        var rng = SeededGenerator(seed: 99)
        for (count, density) in [(300, 0.1), (4097, 0.3), (20_000, 0.01), (9000, 0.9)] {
            let code = PlainTernary.random(count: count, density: density, seed: 5).code
            let bytes = GapCoder.encode(code)
            for trial in 0..<400 {
                var corrupted = bytes
                for _ in 0..<(1 + trial % 3) {
                    let i = Int.random(in: 0..<corrupted.count, using: &rng)
                    corrupted[i] ^= UInt8.random(in: 1...255, using: &rng)
                }
                try checkHostile(corrupted, code, "trial \(trial), count \(count)")
            }
            for _ in 0..<200 {
                let noise = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                try checkHostile([0x14] + noise, code, "random bytes")
            }
        }
    }

    @Test func wrongNonzeroCountThrows() throws {
        let code = PlainTernary.random(count: 10_000, density: 0.1, seed: 1).code
        let bytes = GapCoder.encode(code)
        for nonzero in [code.nonzeroCount - 1, code.nonzeroCount + 1, code.nonzeroCount + 8, 0, -1, 10_001] {
            #expect(throws: QuantizeError.self, "nonzero \(nonzero)") {
                try bytes.withUnsafeBytes { try GapCoder.decode($0, count: 10_000, nonzero: nonzero) }
            }
        }
        #expect(throws: QuantizeError.self) {
            try bytes.withUnsafeBytes { try GapCoder.decode($0, count: 10_001, nonzero: code.nonzeroCount) }
        }
    }

    static let boundDensities = [0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]

    @Test(arguments: boundDensities)
    func sizeIsWithinOnePercentOfShannonBound(density: Double) {
        let count = 100_000
        let nonzero = Int(Double(count) * density)
        let code = PlainTernary.topK(count: count, nonzero: nonzero, seed: UInt64(density * 1000)).code
        let bytes = GapCoder.encode(code).count
        let bound = GapCoder.shannonBoundBits(count: count, nonzero: nonzero) / 8
        #expect(Double(bytes) <= 1.01 * bound, "p \(density): \(bytes) bytes, bound \(bound)")
    }

    /// Runs with more than `sampledRunKept` kept positions choose their parameter on a sample of
    /// their segments: still within 1 % of the bound, within 0.05 % of the best single parameter
    /// counted exactly over the whole mask, and exact on the way back. Also a long run of ones
    /// (Huffman), where the sampled byte histogram must not count bytes past the tensor's end.
    @Test func longRunsChooseTheirParameterOnASample() throws {
        for (count, density) in [(1 << 22 | 77, 0.13), (3 << 21, 0.2), (3 << 20, 0.6)] {
            let nonzero = Int(Double(count) * density)
            #expect(nonzero > GapCoder.sampledRunKept)
            let plain = PlainTernary.random(count: count, density: density, seed: UInt64(count))
            let code = plain.code
            let bytes = GapCoder.encode(code).count
            let bound = GapCoder.shannonBoundBits(count: count, nonzero: code.nonzeroCount) / 8
            #expect(Double(bytes) <= 1.01 * bound, "p \(density): \(bytes) bytes, bound \(bound)")
            // The best static parameter near the density, each written over the whole mask.
            let j0 = Int((density * 64).rounded())
            let k0 = GolombParameter.index(forDensity: density)
            let candidates = (j0 - 3...j0 + 3).filter(ByteHuffmanCode.indices.contains).map { GapCoder.RunParameter(isHuffman: true, index: $0) }
                + (k0 - 3...k0 + 3).filter(GolombParameter.indices.contains).map { GapCoder.RunParameter(isHuffman: false, index: $0) }
            var best = Int.max
            var words = [UInt64](repeating: 0, count: (count + 63) / 64)
            words.withUnsafeMutableBytes { $0.copyBytes(from: code.mask) }
            for parameter in candidates {
                var writer = BitWriter()
                let plan = [GapCoder.RunParameter](repeating: parameter, count: (count + 255) >> GapCoder.blockShift)
                code.mask.withUnsafeBufferPointer { maskBytes in
                    words.withUnsafeBufferPointer { words in
                        GapCoder.writeRuns(plan, words: words, maskBytes: maskBytes, count: count, into: &writer)
                    }
                }
                best = min(best, 1 + code.signs.count + (writer.bitCount + 7) / 8)
            }
            #expect(Double(bytes) <= 1.0005 * Double(best) + 8, "p \(density): \(bytes) bytes, best static \(best)")
            try roundTrip(plain, "count \(count) p \(density)")
        }
    }

    /// Refinement of one run longer than `sampledRunKept` kept positions (so it counts a sample of the
    /// run's segments) picks the parameter an exact count over the whole run would pick.
    @Test func sampledRefinementPicksTheExactBest() throws {
        for (count, density) in [(1 << 23, 0.09), (1 << 22, 0.2), (3 << 20, 0.45)] {
            let code = PlainTernary.random(count: count, density: density, seed: UInt64(count) &+ 3).code
            #expect(code.nonzeroCount > GapCoder.sampledRunKept)
            var words = [UInt64](repeating: 0, count: (count + 63) / 64)
            words.withUnsafeMutableBytes { $0.copyBytes(from: code.mask) }
            let blocks = (count + 255) >> GapCoder.blockShift
            func size(_ parameter: GapCoder.RunParameter) -> Int {
                var writer = BitWriter()
                code.mask.withUnsafeBufferPointer { maskBytes in
                    words.withUnsafeBufferPointer { words in
                        GapCoder.writeRuns([GapCoder.RunParameter](repeating: parameter, count: blocks), words: words,
                                           maskBytes: maskBytes, count: count, into: &writer)
                    }
                }
                return writer.bitCount
            }
            // Start from the density's Golomb parameter: refinement weighs it, its neighbours and the
            // byte codes near the density.
            let k0 = GolombParameter.index(forDensity: density)
            var plan = [GapCoder.RunParameter](repeating: .init(isHuffman: false, index: k0), count: blocks)
            words.withUnsafeBufferPointer { GapCoder.refine(&plan, words: $0, count: count) }
            #expect(plan.allSatisfy { $0 == plan[0] })
            let j0 = Int((density * 64).rounded())
            let candidates = (j0 - 1...j0 + 1).filter(ByteHuffmanCode.indices.contains).map { GapCoder.RunParameter(isHuffman: true, index: $0) }
                + (k0 - 1...k0 + 1).filter(GolombParameter.indices.contains).map { GapCoder.RunParameter(isHuffman: false, index: $0) }
            let exact = candidates.min { size($0) < size($1) }!
            #expect(size(plan[0]) == size(exact), "p \(density): sampled \(plan[0]) \(size(plan[0])) bits, exact \(exact) \(size(exact)) bits")
        }
    }

    @Test func smallTensorsAreNotDominatedByOverhead() {
        for density in [0.05, 0.1, 0.3] {
            let nonzero = Int(512 * density)
            let code = PlainTernary.topK(count: 512, nonzero: nonzero, seed: 2).code
            let bytes = GapCoder.encode(code).count
            let bound = GapCoder.shannonBoundBits(count: 512, nonzero: nonzero) / 8
            #expect(Double(bytes) <= bound * 1.02 + 4, "p \(density): \(bytes) bytes, bound \(bound)")
        }
    }

    @Test func clusteredMasksBeatOneStaticParameter() throws {
        let plain = PlainTernary.clustered(rows: 256, width: 4096, seed: 42)
        let code = plain.code
        let adaptive = GapCoder.encode(code).count
        // The best single Golomb parameter for the whole tensor, written as one run.
        var best = Int.max
        for index in GolombParameter.indices.prefix(200) {
            var writer = BitWriter()
            let plan = [GapCoder.RunParameter](repeating: .init(isHuffman: false, index: index),
                                               count: (code.count + 255) >> GapCoder.blockShift)
            code.mask.withUnsafeBufferPointer { maskBytes in
                var words = [UInt64](repeating: 0, count: (code.count + 63) / 64)
                words.withUnsafeMutableBytes { $0.copyBytes(from: code.mask) }
                words.withUnsafeBufferPointer { words in
                    GapCoder.writeRuns(plan, words: words, maskBytes: maskBytes, count: code.count, into: &writer)
                }
            }
            best = min(best, 1 + code.signs.count + (writer.bitCount + 7) / 8)
        }
        #expect(Double(adaptive) < 0.9 * Double(best), "adaptive \(adaptive) bytes, best static \(best)")
    }

    @Test func shannonBoundMatchesClosedForms() {
        #expect(GapCoder.shannonBoundBits(count: 0, nonzero: 0) == 0)
        #expect(GapCoder.shannonBoundBits(count: 8, nonzero: 4) == 12)
        #expect(GapCoder.shannonBoundBits(count: 8, nonzero: 8) == 8)
        #expect(GapCoder.shannonBoundBits(count: 8, nonzero: 0) == 0)
    }
}

/// A hostile stream must throw, or decode to a code with exactly the expected counts; `validate` agrees.
func checkHostile(_ bytes: [UInt8], _ code: TernaryCode, _ label: String) throws {
    // The mask decoder and the float decoder (scatter or chunked expansion, by density) share one
    // reader: they must refuse the same streams, and agree on every stream they accept.
    let decoded = try? bytes.withUnsafeBytes { try GapCoder.decode($0, count: code.count, nonzero: code.nonzeroCount) }
    let floats = try? GapDecoderFastPathTests.floatDecode(bytes, count: code.count, nonzero: code.nonzeroCount, scale: 1, as: .bf16)
    #expect((decoded == nil) == (floats == nil), "\(label): mask decode \(decoded == nil ? "throws" : "succeeds"), float decode not")
    // validate (verify's check, which decodes nothing) refuses exactly what the decoders refuse.
    let valid = (try? bytes.withUnsafeBytes { try GapCoder.validate($0, count: code.count, nonzero: code.nonzeroCount) }) != nil
    #expect(valid == (decoded != nil), "\(label): validate \(valid ? "accepts" : "refuses"), mask decode not")
    guard let decoded, let floats else { return }
    #expect(decoded.mask.count == code.mask.count && decoded.signs.count == code.signs.count, "\(label)")
    #expect(decoded.mask.reduce(0) { $0 + $1.nonzeroBitCount } == code.nonzeroCount, "\(label)")
    #expect(floats == GapDecoderFastPathTests.expected(PlainTernary(decoded), scale: 1, as: .bf16), "\(label): floats")
}
