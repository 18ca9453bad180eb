import Foundation
import Quantize
import TaskVector
import Testing

/// A LoRA module's factors for tests: `lora_A` r × in and `lora_B` out × r, row-major, binary32.
struct Factors {
    var r: Int
    var inFeatures: Int
    var outFeatures: Int
    var a: [Float]
    var b: [Float]

    static func random(r: Int, in n: Int, out m: Int, seed: UInt64, scaleB: Float = 1) -> Factors {
        var g = SplitMix64(seed: seed)
        return Factors(r: r, inFeatures: n, outFeatures: m,
                       a: (0..<(r * n)).map { _ in Float.random(in: -1...1, using: &g) },
                       b: (0..<(m * r)).map { _ in scaleB * Float.random(in: -1...1, using: &g) })
    }

    var aMatrix: Matrix { Matrix(rows: r, cols: inFeatures, floats: a) }
    var bMatrix: Matrix { Matrix(rows: outFeatures, cols: r, floats: b) }
    /// B·A in binary64, formed densely: the plain reference.
    var product: Matrix { bMatrix.multiplied(by: aMatrix) }
}

/// The SVD and DCT gauges of a LoRA module against a plain reference: the SVD of the dense product B·A.
@Suite struct LoRAGaugeTests {
    static func maxDistance(_ x: Matrix, _ y: Matrix) -> Double {
        zip(x.elements, y.elements).map { ($0 - $1).magnitude }.max() ?? 0
    }

    static func distance(_ x: Matrix, _ y: Matrix) -> Double {
        zip(x.elements, y.elements).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }

    /// The reference gauge: U√σ and √σVᵀ from the dense product's SVD, with the sign rule of the spec.
    static func reference(_ f: Factors) -> (a: Matrix, b: Matrix, sigma: [Double]) {
        let svd = SVD(f.product)
        var aS = Matrix(zeros: f.r, f.inFeatures)
        var bS = Matrix(zeros: f.outFeatures, f.r)
        var sigma = [Double](repeating: 0, count: f.r)
        for i in 0..<min(f.r, svd.count) {
            let s = svd.singularValues[i]
            sigma[i] = s
            // The row of the largest |V_ji|, the first among equals; its sign fixes the component's.
            var j = 0
            for c in 0..<f.inFeatures where svd.vt[i, c].magnitude > svd.vt[i, j].magnitude { j = c }
            let sign: Double = f.inFeatures > 0 && svd.vt[i, j] < 0 ? -1 : 1
            for row in 0..<f.outFeatures { bS[row, i] = sign * svd.u[row, i] * s.squareRoot() }
            for c in 0..<f.inFeatures { aS[i, c] = sign * s.squareRoot() * svd.vt[i, c] }
        }
        return (aS, bS, sigma)
    }

    static let shapes: [(r: Int, in: Int, out: Int)] = [
        (8, 64, 64), (4, 30, 7), (16, 10, 40), (1, 1, 1), (1, 5, 3), (2, 2, 2), (5, 3, 4), (6, 2, 9), (3, 0, 5), (2, 6, 0),
    ]

    @Test(arguments: shapes.indices)
    func svdGaugeKeepsTheProductAndMatchesTheDenseReference(_ k: Int) {
        let shape = Self.shapes[k]
        for seed in UInt64(1)...4 {
            let f = Factors.random(r: shape.r, in: shape.in, out: shape.out, seed: seed &* 1000 &+ UInt64(k))
            let context = "r \(shape.r) in \(shape.in) out \(shape.out) seed \(seed)"
            let g = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            let product = f.product
            let norm = product.squaredNorm.squareRoot()
            #expect(g.a.rows == f.r && g.a.cols == f.inFeatures && g.b.rows == f.outFeatures && g.b.cols == f.r, "\(context)")
            #expect(Self.distance(g.b.multiplied(by: g.a), product) <= 1e-12 * max(norm, 1e-300), "\(context): B^S A^S ≠ BA")
            #expect(abs(g.productNormSquared - product.squaredNorm) <= 1e-12 * product.squaredNorm, "\(context): Σσ²")
            // Balanced: ‖B^S‖² = ‖A^S‖² = Σσ.
            let sum = g.singularValues.reduce(0, +)
            #expect(abs(g.a.squaredNorm - sum) <= 1e-12 * max(sum, 1e-300) && abs(g.b.squaredNorm - sum) <= 1e-12 * max(sum, 1e-300), "\(context)")
            let ref = Self.reference(f)
            for (s, t) in zip(g.singularValues, ref.sigma) { #expect(abs(s - t) <= 1e-12 * max(norm, 1e-300), "\(context): σ \(s) vs \(t)") }
            // Random factors have distinct singular values, so the factors themselves match the reference.
            let scale = sum.squareRoot()
            #expect(Self.distance(g.a, ref.a) <= 1e-9 * max(scale, 1e-300), "\(context): A^S differs from the dense reference")
            #expect(Self.distance(g.b, ref.b) <= 1e-9 * max(scale, 1e-300), "\(context): B^S differs from the dense reference")
            // Components beyond min(r, in, out) are exactly zero.
            for i in min(f.r, f.inFeatures, f.outFeatures)..<f.r {
                #expect(g.singularValues[i] == 0 && (0..<f.inFeatures).allSatisfy { g.a[i, $0] == 0 }
                        && (0..<f.outFeatures).allSatisfy { g.b[$0, i] == 0 }, "\(context): component \(i)")
            }
        }
    }

    @Test func signRuleMakesTheLargestEntryOfEachRightVectorPositive() {
        for seed in UInt64(1)...20 {
            let f = Factors.random(r: 6, in: 12, out: 9, seed: seed)
            let g = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            for i in 0..<6 {
                let row = (0..<12).map { g.a[i, $0] }
                let j = row.indices.max { abs(row[$0]) < abs(row[$1]) || (abs(row[$0]) == abs(row[$1]) && $0 > $1) }!
                #expect(row[j] > 0, "seed \(seed) component \(i)")
            }
            // Flipping the signs of the factors' components (another valid SVD) gives the same gauge.
            var flipped = f
            for c in 0..<6 where c % 2 == 0 {
                for x in 0..<12 { flipped.a[c * 12 + x] = -flipped.a[c * 12 + x] }
                for y in 0..<9 { flipped.b[y * 6 + c] = -flipped.b[y * 6 + c] }
            }
            let h = LoRAGaugeTransform.svd(a: flipped.aMatrix, b: flipped.bMatrix)
            #expect(Self.distance(h.a, g.a) <= 1e-12 && Self.distance(h.b, g.b) <= 1e-12, "seed \(seed)")
        }
    }

    @Test func zeroAndUntrainedModulesStayExactlyZero() {
        // A module at PEFT's init: A random, B = 0. And an all-zero module.
        var atInit = Factors.random(r: 4, in: 10, out: 6, seed: 3)
        atInit.b = [Float](repeating: 0, count: atInit.b.count)
        var zero = atInit
        zero.a = [Float](repeating: 0, count: zero.a.count)
        for f in [atInit, zero] {
            let g = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            #expect(g.singularValues.allSatisfy { $0 == 0 })
            #expect(g.a.elements.allSatisfy { $0 == 0 } && g.b.elements.allSatisfy { $0 == 0 })
            let d = LoRAGaugeTransform.dct(g)
            #expect(d.a.elements.allSatisfy { $0 == 0 } && d.b.elements.allSatisfy { $0 == 0 })
        }
    }

    @Test func rankDeficientFactorsKeepTheProduct() {
        for seed in UInt64(1)...6 {
            // B of rank 1 (every column a multiple of one vector, by powers of two so that binary32 keeps it
            // exactly rank 1), A with two equal rows.
            var f = Factors.random(r: 5, in: 11, out: 8, seed: seed)
            var g = SplitMix64(seed: seed ^ 0xABCD)
            let v = (0..<8).map { _ in Float.random(in: -1...1, using: &g) }
            let w = (0..<5).map { _ in [-2, -1, 0, 0.5, 1, 2][Int.random(in: 0...5, using: &g)] as Float }
            for y in 0..<8 { for c in 0..<5 { f.b[y * 5 + c] = v[y] * w[c] } }
            for x in 0..<11 { f.a[1 * 11 + x] = f.a[0 * 11 + x] }
            let gauge = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            let norm = f.product.squaredNorm.squareRoot()
            #expect(Self.distance(gauge.b.multiplied(by: gauge.a), f.product) <= 1e-12 * max(norm, 1e-300), "seed \(seed)")
            #expect(gauge.singularValues.dropFirst().allSatisfy { $0 <= 1e-12 * max(norm, 1e-300) }, "seed \(seed): rank 1")
            let d = LoRAGaugeTransform.dct(gauge)
            #expect(Self.distance(d.b.multiplied(by: d.a), f.product) <= 1e-12 * max(norm, 1e-300), "seed \(seed): DCT")
        }
    }

    @Test func gaugeIsScaleEquivariantAcrossTheWholeBinary32Range() {
        // Multiplying B by 2^e multiplies B·A by 2^e: the gauge factors by 2^(e/2) each (e even). (Far
        // enough from the subnormals that binary32 keeps every bit of the scaled B.)
        let f = Factors.random(r: 3, in: 7, out: 5, seed: 11)
        let g = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
        for e in [-100, -60, 60, 120] {
            var h = f
            h.b = f.b.map { $0 * Float(sign: .plus, exponent: e, significand: 1) }
            let s = LoRAGaugeTransform.svd(a: h.aMatrix, b: h.bMatrix)
            let factor = Double(sign: .plus, exponent: e / 2, significand: 1)
            let scaled = Matrix(rows: g.a.rows, cols: g.a.cols, elements: g.a.elements.map { $0 * factor })
            #expect(Self.distance(s.a, scaled) <= 1e-12 * scaled.squaredNorm.squareRoot(), "e \(e)")
        }
    }

    @Test(arguments: [1, 2, 3, 4, 7, 8, 16, 64])
    func dctBasisIsOrthonormalAndFollowsItsFormula(_ r: Int) {
        let c = LoRAGaugeTransform.dctBasis(r)
        let ctc = c.transposed.multiplied(by: c)
        #expect(Self.maxDistance(ctc, .identity(r)) <= 1e-14 * Double(r))
        for n in 0..<r {
            // Plain formula, column 0 separately.
            #expect(abs(c[n, 0] - 1 / Double(r).squareRoot()) <= 1e-16 * 4)
            for k in 1..<max(r, 1) where k < r {
                let want = (2 / Double(r)).squareRoot() * cos(Double.pi * Double((2 * n + 1) * k) / Double(2 * r))
                // The argument π(2n+1)k/(2r) is rounded in another order: a few ulps of up to ~200.
                #expect(abs(c[n, k] - want) <= 1e-13)
            }
        }
        if r == 2 {
            let h = 1 / 2.0.squareRoot()
            #expect(Self.maxDistance(c, Matrix(rows: 2, cols: 2, elements: [h, h, h, -h])) <= 4e-16)
        }
    }

    @Test func dctGaugeKeepsTheProductAndSpreadsEachComponent() {
        for seed in UInt64(1)...5 {
            let f = Factors.random(r: 8, in: 40, out: 24, seed: seed)
            let s = LoRAGaugeTransform.svd(a: f.aMatrix, b: f.bMatrix)
            let d = LoRAGaugeTransform.dct(s)
            let norm = f.product.squaredNorm.squareRoot()
            #expect(Self.distance(d.b.multiplied(by: d.a), f.product) <= 1e-12 * norm, "seed \(seed)")
            #expect(d.singularValues == s.singularValues)
            // Rotations keep both factors' norms.
            #expect(abs(d.a.squaredNorm - s.a.squaredNorm) <= 1e-12 * s.a.squaredNorm)
            #expect(abs(d.b.squaredNorm - s.b.squaredNorm) <= 1e-12 * s.b.squaredNorm)
        }
    }
}
