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
}
