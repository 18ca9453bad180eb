import CompeftTestSupport
import Testing
import TaskVector

/// ``Matrix/multiplied(by:)`` (eight output columns per SIMD register) against the plain i-p-j loop it
/// replaced, bit for bit, signed zeros included.
@Suite struct MatrixProductTests {
    static func reference(_ a: Matrix, _ b: Matrix) -> [Double] {
        var out = [Double](repeating: 0, count: a.rows * b.cols)
        for i in 0..<a.rows {
            for p in 0..<a.cols {
                let x = a[i, p]
                for j in 0..<b.cols { out[i * b.cols + j] += x * b[p, j] }
            }
        }
        return out
    }

    @Test(arguments: [(0, 0, 0), (0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 1, 1), (2, 3, 7), (5, 9, 8), (4, 16, 17), (33, 40, 96), (9, 1, 23)])
    func productMatchesThePlainLoopBitForBit(_ shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        let values: [(String, (inout SplitMix64) -> Double)] = [
            ("uniform", { g in Double.random(in: -1...1, using: &g) }),
            ("levels and signed zeros", { g in [0, -0.0, 1, -1, 0.5, 3][Int(g.next() % 6)] }),
            ("subnormal and huge", { g in Double.random(in: -1...1, using: &g) * [1e-310, 1e300, 1, 0][Int(g.next() % 4)] }),
        ]
        for seed in UInt64(1)...2 {
            var g = SplitMix64(seed: seed &* 31 &+ UInt64(m * 10_000 + k * 100 + n))
            for (label, value) in values {
                let a = Matrix(rows: m, cols: k, elements: (0..<(m * k)).map { _ in value(&g) })
                let b = Matrix(rows: k, cols: n, elements: (0..<(k * n)).map { _ in value(&g) })
                let got = a.multiplied(by: b).elements.map(\.bitPattern)
                #expect(got == Self.reference(a, b).map(\.bitPattern), "\(label) \(shape) seed \(seed)")
            }
        }
    }
}
