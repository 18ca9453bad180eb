import CompeftTestSupport
import Testing
import TaskVector

/// ``HouseholderQR`` (reflections across SIMD lanes, one column per lane) against the column-at-a-time
/// reference it replaced, bit for bit: Q and R must be the same binary64 values, signed zeros included,
/// because containers written through the LoRA gauges depend on every bit.
@Suite struct HouseholderQRTests {
    static func expectSameBits(_ a: Matrix, seed: UInt64, _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let qr = HouseholderQR(a)
        let reference = scalarHouseholderQR(rows: a.rows, cols: a.cols, a.elements)
        let p = min(a.rows, a.cols)
        #expect(qr.q.rows == a.rows && qr.q.cols == p && qr.r.rows == p && qr.r.cols == a.cols, sourceLocation: sourceLocation)
        let (q, qRef) = (qr.q.elements.map(\.bitPattern), reference.q.map(\.bitPattern))
        let (r, rRef) = (qr.r.elements.map(\.bitPattern), reference.r.map(\.bitPattern))
        let qDiff = q.count == qRef.count ? q.indices.first { q[$0] != qRef[$0] } : -1
        let rDiff = r.count == rRef.count ? r.indices.first { r[$0] != rRef[$0] } : -1
        #expect(qDiff == nil && rDiff == nil,
                "\(label) \(a.rows)×\(a.cols) seed \(seed): Q differs at \(qDiff.map(String.init) ?? "-"), R at \(rDiff.map(String.init) ?? "-")",
                sourceLocation: sourceLocation)
    }

    static func random(_ m: Int, _ n: Int, _ g: inout SplitMix64, _ value: (inout SplitMix64) -> Double) -> Matrix {
        Matrix(rows: m, cols: n, elements: (0..<(m * n)).map { _ in value(&g) })
    }

    static let shapes = [(0, 0), (0, 3), (3, 0), (1, 1), (1, 9), (9, 1), (2, 2), (7, 3), (3, 7), (8, 8), (9, 9),
                         (16, 8), (17, 16), (40, 33), (33, 40), (100, 8), (70, 24), (130, 96)]

    @Test(arguments: shapes)
    func matchesTheScalarReferenceOnGaussianMatrices(_ shape: (Int, Int)) {
        for seed in UInt64(1)...3 {
            var g = SplitMix64(seed: seed &* 7919 &+ UInt64(shape.0 * 1000 + shape.1))
            let a = Self.random(shape.0, shape.1, &g) { g in Double.random(in: -1...1, using: &g) }
            Self.expectSameBits(a, seed: seed, "gaussian")
        }
    }

    /// Zeros (signed), exact ties, repeated and zero columns (rank deficiency: reflections skipped and dots of
    /// exactly 0 in forming Q), subnormals, huge values and mixed scales.
    @Test(arguments: shapes)
    func matchesTheScalarReferenceOnAdversarialMatrices(_ shape: (Int, Int)) {
        let (m, n) = shape
        let levels: [Double] = [0, -0.0, 1, -1, 0.5, -0.5, 2]
        for seed in UInt64(1)...2 {
            var g = SplitMix64(seed: seed &+ UInt64(m * 131 + n))
            let cases: [(String, Matrix)] = [
                ("zero", Matrix(zeros: m, n)),
                ("negative zero", Matrix(rows: m, cols: n, elements: [Double](repeating: -0.0, count: m * n))),
                ("levels", Self.random(m, n, &g) { g in levels[Int(g.next() % UInt64(levels.count))] }),
                ("sparse levels", Self.random(m, n, &g) { g in g.next() % 4 == 0 ? levels[Int(g.next() % 7)] : 0 }),
                ("identity-like", Matrix(rows: m, cols: n, elements: (0..<(m * n)).map { k in k / n == k % n ? (k % 2 == 0 ? 1 : -1) : 0 })),
                ("subnormal", Self.random(m, n, &g) { g in Double.random(in: -1...1, using: &g) * 1e-310 }),
                ("huge", Self.random(m, n, &g) { g in Double.random(in: -1...1, using: &g) * 1e300 }),
                ("mixed scales", Self.random(m, n, &g) { g in
                    Double.random(in: -1...1, using: &g) * [1e-200, 1, 1e200, 0][Int(g.next() % 4)]
                }),
            ]
            for (label, a) in cases { Self.expectSameBits(a, seed: seed, label) }
            // Repeated columns and a zero column in a random matrix.
            if n >= 3 {
                var a = Self.random(m, n, &g) { g in Double.random(in: -1...1, using: &g) }
                for i in 0..<m {
                    a[i, n - 1] = a[i, 0]
                    a[i, 1] = 0
                }
                Self.expectSameBits(a, seed: seed, "repeated and zero columns")
            }
        }
    }

    @Test func aOneElementMatrixIsItsOwnR() {
        for x in [0.0, -0.0, 3, -3, .leastNonzeroMagnitude, -.greatestFiniteMagnitude] {
            Self.expectSameBits(Matrix(rows: 1, cols: 1, elements: [x]), seed: 0, "one element \(x)")
        }
    }
}
