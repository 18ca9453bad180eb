import Foundation
import Quantize
import TaskVector
import Testing

/// ``ModuleProduct`` (P and I from r×r Gram matrices) against the plain reference: the dense ternary
/// product B̂Â formed entry by entry.
@Suite struct ModuleProductTests {
    struct Reference {
        var p: Int64
        var inner: Double
        var norm2: Double
        var keptA = 0, nonzeroA = 0, keptB = 0, nonzeroB = 0
    }

    static func sign(_ x: Float, threshold: UInt32) -> Int64 {
        let m = x.bitPattern & 0x7FFF_FFFF
        guard m >= threshold, m != 0 else { return 0 }
        return x.sign == .minus ? -1 : 1
    }

    static func reference(_ f: Factors, thresholdA: UInt32, thresholdB: UInt32) -> Reference {
        let (r, n, m) = (f.r, f.inFeatures, f.outFeatures)
        var ref = Reference(p: 0, inner: 0, norm2: 0)
        for x in f.a {
            if x.bitPattern & 0x7FFF_FFFF >= thresholdA { ref.keptA += 1; if x != 0 { ref.nonzeroA += 1 } }
        }
        for x in f.b {
            if x.bitPattern & 0x7FFF_FFFF >= thresholdB { ref.keptB += 1; if x != 0 { ref.nonzeroB += 1 } }
        }
        for y in 0..<m {
            for x in 0..<n {
                var t: Int64 = 0
                var d = 0.0
                for k in 0..<r {
                    t += sign(f.b[y * r + k], threshold: thresholdB) * sign(f.a[k * n + x], threshold: thresholdA)
                    d += Double(f.b[y * r + k]) * Double(f.a[k * n + x])
                }
                ref.p += t * t
                ref.inner += d * Double(t)
                ref.norm2 += d * d
            }
        }
        return ref
    }

    static func measure(_ f: Factors, _ ta: UInt32, _ tb: UInt32, n2: Double = 1) -> ModuleProduct? {
        f.a.withUnsafeBufferPointer { a in
            f.b.withUnsafeBufferPointer { b in
                ModuleProduct.measure(a: a, b: b, rank: f.r, thresholdA: ta, thresholdB: tb, normSquared: n2)
            }
        }
    }

    static func check(_ f: Factors, _ ta: UInt32, _ tb: UInt32, _ context: String) throws {
        let ref = reference(f, thresholdA: ta, thresholdB: tb)
        let got = try #require(measure(f, ta, tb, n2: ref.norm2), "\(context)")
        #expect(got.ternaryNormSquared == ref.p, "\(context): P \(got.ternaryNormSquared) vs \(ref.p)")
        #expect(abs(got.inner - ref.inner) <= 1e-12 * max(abs(ref.inner), ref.norm2.squareRoot() * Double(ref.p).squareRoot(), 1e-300),
                "\(context): I \(got.inner) vs \(ref.inner)")
        #expect(got.keptA == ref.keptA && got.nonzeroA == ref.nonzeroA && got.keptB == ref.keptB && got.nonzeroB == ref.nonzeroB,
                "\(context): counts")
        let n2 = f.a.withUnsafeBufferPointer { a in f.b.withUnsafeBufferPointer { b in ModuleProduct.normSquared(a: a, b: b, rank: f.r) } }
        #expect(abs(n2 - ref.norm2) <= 1e-12 * max(ref.norm2, 1e-300), "\(context): N \(n2) vs \(ref.norm2)")
        // The error formula against the dense one, at the norm-preserving scale.
        if let c = got.normPreservingScale {
            var dense = 0.0
            for y in 0..<f.outFeatures {
                for x in 0..<f.inFeatures {
                    var t: Int64 = 0
                    var d = 0.0
                    for k in 0..<f.r {
                        t += sign(f.b[y * f.r + k], threshold: tb) * sign(f.a[k * f.inFeatures + x], threshold: ta)
                        d += Double(f.b[y * f.r + k]) * Double(f.a[k * f.inFeatures + x])
                    }
                    dense += (d - c * Double(t)) * (d - c * Double(t))
                }
            }
            #expect(abs(got.squaredError(scale: c) - dense) <= 1e-10 * ref.norm2, "\(context): error")
            #expect(abs(c * c * Double(got.ternaryNormSquared) - ref.norm2) <= 1e-12 * ref.norm2, "\(context): norm kept")
        } else {
            #expect(ref.p == 0 && got.squaredError(scale: 0) == ref.norm2)
        }
    }

    /// A threshold near the q-quantile of both factors' magnitudes.
    static func quantile(_ f: Factors, _ q: Double) -> UInt32 {
        let m = (f.a + f.b).map { $0.bitPattern & 0x7FFF_FFFF }.sorted()
        guard !m.isEmpty else { return 0 }
        return m[min(m.count - 1, Int(q * Double(m.count)))]
    }

    @Test(arguments: [(8, 64, 64), (4, 30, 7), (16, 10, 40), (1, 1, 1), (3, 70, 2), (5, 3, 4), (2, 0, 3), (2, 3, 0)])
    func matchesTheDenseProductOnRandomFactors(_ shape: (Int, Int, Int)) throws {
        for seed in UInt64(1)...3 {
            let f = Factors.random(r: shape.0, in: shape.1, out: shape.2, seed: seed, scaleB: 0.3)
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                let t = Self.quantile(f, q)
                try Self.check(f, t, t, "\(shape) seed \(seed) q \(q)")
            }
            // Thresholds of their own per factor (tensor scope).
            try Self.check(f, Self.quantile(f, 0.8), Self.quantile(f, 0.3), "\(shape) seed \(seed) own thresholds")
        }
    }

    @Test func tiesZerosAndSignedZerosFollowTheThresholdRule() throws {
        var g = SplitMix64(seed: 42)
        let levels: [Float] = [0, -0.0, 0.25, -0.25, 0.5, -0.5, 1, -1]
        let pick = { (g: inout SplitMix64) in levels[Int(g.next() % UInt64(levels.count))] }
        let f = Factors(r: 4, inFeatures: 9, outFeatures: 7, a: (0..<36).map { _ in pick(&g) }, b: (0..<28).map { _ in pick(&g) })
        // Threshold exactly at a tie level (all ties kept), at 0 (zeros kept but signless), and above everything.
        for t in [Float(0.5).bitPattern, Float(0.25).bitPattern, 0, Float(1).bitPattern, TensorPlan.keepNothing] {
            try Self.check(f, t, t, "threshold bits \(t)")
        }
        let none = try #require(Self.measure(f, TensorPlan.keepNothing, TensorPlan.keepNothing))
        #expect(none.ternaryNormSquared == 0 && none.keptA == 0 && none.keptB == 0 && none.normPreservingScale == nil)
        let all = try #require(Self.measure(f, 0, 0))
        #expect(all.keptA == 36 && all.keptB == 28)
    }

    @Test func subnormalAndHugeValuesAreCountedByTheirBits() throws {
        let f = Factors(r: 2, inFeatures: 3, outFeatures: 2,
                        a: [.leastNonzeroMagnitude, -3e38, 1e-30, 0, -.leastNormalMagnitude, 2],
                        b: [-.leastNonzeroMagnitude, 3e38, 1, -1e-30])
        for t in [UInt32(0), 1, Float.leastNormalMagnitude.bitPattern, Float(1).bitPattern] {
            let got = try #require(Self.measure(f, t, t))
            let ref = Self.reference(f, thresholdA: t, thresholdB: t)
            #expect(got.ternaryNormSquared == ref.p && got.nonzeroA == ref.nonzeroA && got.nonzeroB == ref.nonzeroB, "t \(t)")
        }
    }
}
