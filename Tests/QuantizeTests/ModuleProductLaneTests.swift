import CompeftTestSupport
import Quantize
import TaskVector
import Testing

/// The lane kernels of ``ModuleProduct`` and ``LoRAGaugeTransform`` against the scalar code they replaced,
/// bit for bit (containers depend on every bit of N, I and the gauged factors): random factors at sizes
/// around the lane width and the tile of A, and ties, signed zeros, zero rows, subnormals and huge values.
@Suite struct ModuleProductLaneTests {
    static let shapes = [(1, 1, 1), (1, 5, 3), (2, 3, 0), (2, 0, 3), (3, 70, 2), (7, 9, 13), (8, 64, 64), (9, 65, 17),
                         (16, 130, 40), (17, 300, 33), (33, 257, 129), (40, 20, 600)]

    static func levels(_ g: inout SplitMix64) -> Float {
        [0, -0.0, 0.25, -0.25, 0.5, -0.5, 1, -1][Int(g.next() % 8)]
    }

    static func cases(_ shape: (Int, Int, Int), seed: UInt64) -> [(String, Factors)] {
        let (r, n, m) = shape
        var g = SplitMix64(seed: seed &* 104_729 &+ UInt64(r * 10_000 + n * 100 + m))
        func make(_ value: (inout SplitMix64) -> Float) -> Factors {
            Factors(r: r, inFeatures: n, outFeatures: m, a: (0..<(r * n)).map { _ in value(&g) }, b: (0..<(m * r)).map { _ in value(&g) })
        }
        var holes = Factors.random(r: r, in: n, out: m, seed: seed, scaleB: 0.3)
        for k in stride(from: 0, to: holes.a.count, by: 3) { holes.a[k] = 0 }
        for k in stride(from: 0, to: holes.b.count, by: 2 * max(r, 1)) { for j in 0..<r { holes.b[k + j] = -0.0 } }
        return [
            ("gaussian", Factors.random(r: r, in: n, out: m, seed: seed, scaleB: 0.3)),
            ("levels", make(levels)),
            ("zero", Factors(r: r, inFeatures: n, outFeatures: m, a: [Float](repeating: 0, count: r * n), b: [Float](repeating: 0, count: m * r))),
            ("zero rows and columns", holes),
            ("subnormal", make { g in Float.random(in: -1...1, using: &g) * 1e-39 }),
            ("huge", make { g in Float.random(in: -1...1, using: &g) * 3e38 }),
            ("mixed", make { g in Float.random(in: -1...1, using: &g) * [1e-30, 1, 1e30, 0][Int(g.next() % 4)] }),
        ]
    }

    static func thresholds(_ f: Factors) -> [UInt32] {
        let m = (f.a + f.b).map { $0.bitPattern & 0x7FFF_FFFF }.sorted()
        guard !m.isEmpty else { return [0, TensorPlan.keepNothing] }
        return [0, 1, TensorPlan.keepNothing] + [0.5, 0.9, 0.99].map { m[min(m.count - 1, Int($0 * Double(m.count)))] }
    }

    @Test(arguments: shapes)
    func measureMatchesTheScalarKernelBitForBit(_ shape: (Int, Int, Int)) throws {
        for seed in UInt64(1)...2 {
            for (label, f) in Self.cases(shape, seed: seed) {
                for t in Self.thresholds(f) {
                    let context = "\(label) \(shape) seed \(seed) threshold \(t)"
                    let (got, ref) = f.a.withUnsafeBufferPointer { a in
                        f.b.withUnsafeBufferPointer { b in
                            (ModuleProduct.measure(a: a, b: b, rank: f.r, thresholdA: t, thresholdB: t &>> 1, normSquared: 1),
                             ScalarModuleProduct.measure(a: a, b: b, rank: f.r, thresholdA: t, thresholdB: t &>> 1))
                        }
                    }
                    #expect((got == nil) == (ref == nil), "\(context): overflow")
                    guard let got, let ref else { continue }
                    #expect(got.ternaryNormSquared == ref.p && got.inner.bitPattern == ref.inner.bitPattern,
                            "\(context): P \(got.ternaryNormSquared) vs \(ref.p), I \(got.inner) vs \(ref.inner)")
                    #expect(got.keptA == ref.keptA && got.nonzeroA == ref.nonzeroA && got.keptB == ref.keptB && got.nonzeroB == ref.nonzeroB,
                            "\(context): counts")
                }
            }
        }
    }

    @Test(arguments: shapes)
    func normSquaredMatchesTheScalarKernelBitForBit(_ shape: (Int, Int, Int)) {
        for seed in UInt64(1)...2 {
            for (label, f) in Self.cases(shape, seed: seed) {
                let (got, ref) = f.a.withUnsafeBufferPointer { a in
                    f.b.withUnsafeBufferPointer { b in
                        (ModuleProduct.normSquared(a: a, b: b, rank: f.r), ScalarModuleProduct.normSquared(a: a, b: b, rank: f.r))
                    }
                }
                #expect(got.bitPattern == ref.bitPattern, "\(label) \(shape) seed \(seed): N \(got) vs \(ref)")
            }
        }
    }

    /// The SVD gauge as it was computed before the lane kernels: column-at-a-time QRs, then the sign rule
    /// and the √σ split with subscripts.
    static func referenceSVDGauge(a: Matrix, b: Matrix) -> (a: Matrix, b: Matrix, singularValues: [Double]) {
        let r = a.rows
        let qb = scalarHouseholderQR(rows: b.rows, cols: b.cols, b.elements)
        let at = a.transposed
        let qa = scalarHouseholderQR(rows: at.rows, cols: at.cols, at.elements)
        let (pb, pa) = (min(b.rows, b.cols), min(at.rows, at.cols))
        let qB = Matrix(rows: b.rows, cols: pb, elements: qb.q)
        let rB = Matrix(rows: pb, cols: b.cols, elements: qb.r)
        let qA = Matrix(rows: at.rows, cols: pa, elements: qa.q)
        let rA = Matrix(rows: pa, cols: at.cols, elements: qa.r)
        let svd = SVD(rB.multiplied(by: rA.transposed))
        let p = svd.count
        var u = qB.multiplied(by: svd.u)
        var v = qA.multiplied(by: svd.vt.transposed)
        for i in 0..<p {
            var j = 0
            var largest = -1.0
            for row in 0..<v.rows where v[row, i].magnitude > largest {
                largest = v[row, i].magnitude
                j = row
            }
            if v.rows > 0, v[j, i] < 0 {
                for row in 0..<u.rows { u[row, i] = -u[row, i] }
                for row in 0..<v.rows { v[row, i] = -v[row, i] }
            }
        }
        var bS = Matrix(zeros: b.rows, r)
        var aS = Matrix(zeros: r, a.cols)
        var sigma = [Double](repeating: 0, count: r)
        for i in 0..<p {
            sigma[i] = svd.singularValues[i]
            let h = sigma[i].squareRoot()
            for row in 0..<u.rows { bS[row, i] = u[row, i] * h }
            for col in 0..<v.rows { aS[i, col] = h * v[col, i] }
        }
        return (aS, bS, sigma)
    }

    @Test(arguments: shapes + [(6, 3, 40), (6, 40, 3), (5, 1, 1)])
    func svdGaugeMatchesTheScalarPathBitForBit(_ shape: (Int, Int, Int)) {
        for (label, f) in Self.cases(shape, seed: 1) where f.a.allSatisfy(\.isFinite) && f.b.allSatisfy(\.isFinite) {
            let got = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            let ref = Self.referenceSVDGauge(a: f.aMatrix, b: f.bMatrix)
            #expect(got.a.elements.map(\.bitPattern) == ref.a.elements.map(\.bitPattern)
                    && got.b.elements.map(\.bitPattern) == ref.b.elements.map(\.bitPattern)
                    && got.singularValues.map(\.bitPattern) == ref.singularValues.map(\.bitPattern),
                    "\(label) \(shape)")
        }
    }
}
