import Quantize
import Testing

@Suite struct ThresholdSelectorTests {
    static let sizes = [1, 2, 3, 13, 64, 65, 127, 1000, 70_000]
    static let densities: [Double] = [0.5, 1, 5, 10, 20, 29, 50, 99.9, 100]

    func select(_ x: [Float], rank: Int, absSum: Bool = false) -> ThresholdSelector.Result? {
        var s = ThresholdSelector(rank: rank, wantAbsoluteSum: absSum)
        var ok = true
        // Feed in uneven chunks to exercise chunk boundaries.
        var i = 0
        var step = 1
        while i < x.count {
            let n = min(step, x.count - i)
            ok = ok && x[i..<(i + n)].withUnsafeBufferPointer { s.addCoarse($0) }
            i += n
            step = step * 3 + 1
        }
        guard ok else { return nil }
        if s.finishCoarse() {
            x.withUnsafeBufferPointer { s.addFine($0) }
        }
        return s.finish()
    }

    @Test(arguments: sizes)
    func thresholdMatchesSortOnRandomTiedAndSpecialValues(n: Int) throws {
        for (kind, x) in [("random", Inputs.random(n, seed: UInt64(n))), ("ties", Inputs.ties(n, seed: UInt64(n) + 1)),
                          ("special", Inputs.special(n, seed: UInt64(n) + 2)), ("all-equal", [Float](repeating: -0.75, count: n)),
                          ("zeros", [Float](repeating: 0, count: n))] {
            for density in Self.densities {
                let ref = ReferenceCompeft.run(x, density: density)
                let m = n - ReferenceCompeft.keepCount(n, density)
                let got = try #require(select(x, rank: m, absSum: true))
                #expect(got.threshold == ref.threshold, "\(kind) n=\(n) K=\(density)")
                #expect(got.keptCount == ref.keptCount, "\(kind) n=\(n) K=\(density)")
                #expect(got.keptNonzero == ref.keptNonzero, "\(kind) n=\(n) K=\(density)")
                let refAbs = zip(x, ref.kept).filter { $1 }.reduce(0.0) { $0 + Double(abs($1.0)) }
                #expect(abs(got.keptAbsoluteSum - refAbs) <= 1e-9 * max(1, refAbs), "\(kind) n=\(n) K=\(density)")
            }
        }
    }

    @Test func tiesAtTheThresholdAreAllKept() throws {
        // 10 values, K = 20 %: k = 2, m = 8; the 8th smallest |τ| is 0.5 and four values tie there.
        let x: [Float] = [0.1, -0.2, 0.3, 0.5, -0.5, 0.5, -0.5, 0.05, 0.01, 0.02]
        let got = try #require(select(x, rank: 8))
        #expect(got.threshold == 0.5)
        #expect(got.keptCount == 4)
    }

    @Test func keepingAllNeedsRankZeroAndKeepsZeros() throws {
        let x: [Float] = [0, -0.0, 1, -2]
        let got = try #require(select(x, rank: 0))
        #expect(got.thresholdBits == 0)
        #expect(got.keptCount == 4)
        #expect(got.keptZeros == 2)
        #expect(got.keptNonzero == 2)
    }

    @Test func emptyInputKeepsNothing() throws {
        let got = try #require(select([], rank: 0))
        #expect(got.keptCount == 0 && got.total == 0)
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity, -Float.nan, Float(bitPattern: 0x7F80_0001)])
    func nonFiniteValuesAreRefused(bad: Float) {
        var x = Inputs.random(100, seed: 9)
        x[57] = bad
        #expect(select(x, rank: 50) == nil)
    }

    @Test func keepCountFollowsTheAuthorsFloatArithmetic() {
        // Python: int(100 * (29 / 100)) == 28, not 29; int(30 * 0.1) == 3.
        #expect(CompressionOptions.keepCount(of: 100, density: 29) == 28)
        #expect(CompressionOptions.keepCount(of: 30, density: 10) == 3)
        #expect(CompressionOptions.keepCount(of: 7, density: 100) == 7)
        #expect(CompressionOptions.keepCount(of: 0, density: 50) == 0)
        #expect(CompressionOptions.keepCount(of: 1, density: 50) == 0)
    }
}
