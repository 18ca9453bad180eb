import Quantize
import TaskVector
import Testing

@Suite struct MomentAccumulatorTests {
    @Test(arguments: [0, 1, 2, 3, 100, 70_000])
    func sigmaMatchesTwoPassReference(n: Int) {
        for offset: Float in [0, 1000] {
            let x = Inputs.random(n, seed: UInt64(n)).map { $0 + offset }
            var acc = MomentAccumulator()
            var i = 0
            while i < x.count {
                let len = min(777, x.count - i)
                x[i..<(i + len)].withUnsafeBufferPointer { acc.add($0) }
                i += len
            }
            let ref = ReferenceCompeft.sigma(x)
            #expect(abs(acc.standardDeviation - ref) <= 1e-9 * max(ref, 1e-30), "n=\(n) offset=\(offset)")
            #expect(acc.count == n)
        }
    }
}
