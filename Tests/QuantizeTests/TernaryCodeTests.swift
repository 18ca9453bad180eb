import Quantize
import TaskVector
import Testing

@Suite struct TernaryCodeTests {
    @Test(arguments: [0, 1, 7, 8, 9, 64, 65, 1000, 70_000])
    func encodeDecodeRoundTripsEveryPositionAndSign(n: Int) {
        let x = Inputs.special(n, seed: UInt64(n) &+ 5)
        let t = sourceTensor("t", x)
        let chunks = ResidualChunks()
        for thresholdBits: UInt32 in [0, Float(0.5).bitPattern, Float(1.5).bitPattern, 0x7F7F_FFFF] {
            let code = TernaryCode.encode(t, thresholdBits: thresholdBits, keepValues: false, chunks: chunks)
            var out = [Float](repeating: 9, count: n)
            out.withUnsafeMutableBufferPointer { code.decode(scale: 2, into: $0) }
            for i in 0..<n {
                let kept = x[i].bitPattern & 0x7FFF_FFFF >= thresholdBits && x[i] != 0
                #expect(out[i] == (kept ? (x[i] < 0 ? -2 : 2) : 0), "i=\(i) n=\(n)")
            }
            let sparse = TernaryCode.encode(t, thresholdBits: thresholdBits, keepValues: true, chunks: chunks)
            out.withUnsafeMutableBufferPointer { sparse.decode(scale: 0, into: $0) }
            for i in 0..<n {
                let kept = x[i].bitPattern & 0x7FFF_FFFF >= thresholdBits && x[i] != 0
                #expect(out[i] == (kept ? x[i] : 0))
            }
        }
    }

    /// The mask and signs of a plain per-value loop: kept iff |τ| bits ≥ t, for t > 0.
    static func plainCode(_ x: [Float], thresholdBits t: UInt32) -> TernaryCode {
        var mask = [UInt8](repeating: 0, count: (x.count + 7) / 8)
        var negatives: [Bool] = []
        for (i, v) in x.enumerated() where v.bitPattern & 0x7FFF_FFFF >= t {
            mask[i / 8] |= 1 << UInt8(i % 8)
            negatives.append(v.sign == .minus)
        }
        var signs = [UInt8](repeating: 0, count: (negatives.count + 7) / 8)
        for (k, negative) in negatives.enumerated() where negative { signs[k / 8] |= 1 << UInt8(k % 8) }
        return TernaryCode(count: x.count, keptCount: negatives.count, nonzeroCount: negatives.count, mask: mask, signs: signs)
    }

    /// The sixteen-lane sign path against plain loops: every tail length, chunk boundaries, ties at the
    /// threshold, subnormals, ±0, the largest and the smallest thresholds, f32 read in place and bf16 converted.
    @Test(arguments: [1, 15, 16, 17, 31, 33, 255, 65_535, 65_536, 65_537, 131_089])
    func sixteenLaneSignPathEqualsPlainLoop(n: Int) {
        let inputs = [Inputs.random(n, seed: UInt64(n)), Inputs.ties(n, seed: UInt64(n) &+ 1), Inputs.special(n, seed: UInt64(n) &+ 2)]
        let chunks = ResidualChunks()
        for x in inputs {
            let thresholds: [UInt32] = [1, Float.leastNormalMagnitude.bitPattern, Float(0.25).bitPattern, Float(0.5).bitPattern,
                                        Float(0.9).bitPattern, 0x7F7F_FFFF, x.first.map { $0.bitPattern & 0x7FFF_FFFF } ?? 1]
            for t in thresholds where t != 0 {
                let got = TernaryCode.encode(sourceTensor("t", x), thresholdBits: t, keepValues: false, chunks: chunks)
                #expect(got == Self.plainCode(x, thresholdBits: t), "n=\(n) t=\(t)")
                // bf16 goes through the converting chunk path; the reference sees the same converted values.
                let rounded = x.map { FloatConversion.float(fromBF16: FloatConversion.bf16(from: $0)) }
                let bf16 = TernaryCode.encode(sourceTensor("t", x, dtype: .bf16), thresholdBits: t, keepValues: false, chunks: chunks)
                #expect(bf16 == Self.plainCode(rounded, thresholdBits: t), "bf16 n=\(n) t=\(t)")
            }
        }
    }
}
