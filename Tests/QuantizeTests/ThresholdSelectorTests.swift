#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Quantize
import TaskVector
import Testing

@Suite struct ThresholdSelectorTests {
    static let sizes = [1, 2, 3, 13, 64, 65, 127, 1000, 70_000]
    static let densities: [Double] = [0.5, 1, 5, 10, 20, 29, 50, 99.9, 100]

    func select(_ x: [Float], rank: Int, nonFinite: ThresholdSelector.NonFinite = .refused) -> ThresholdSelector.Result? {
        var s = ThresholdSelector(rank: rank, nonFinite: nonFinite)
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
                let got = try #require(select(x, rank: m))
                #expect(got.threshold == ref.threshold, "\(kind) n=\(n) K=\(density)")
                #expect(got.keptCount == ref.keptCount, "\(kind) n=\(n) K=\(density)")
                #expect(got.keptNonzero == ref.keptNonzero, "\(kind) n=\(n) K=\(density)")
                #expect(got.atThreshold == x.filter { abs($0) == ref.threshold }.count, "\(kind) n=\(n) K=\(density)")
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

    /// With `nonFinite: .ordered` (a merge's rule) NaN and ±Inf are ranked by their bit patterns:
    /// NaN above +∞ above every finite magnitude, as `torch.topk` orders them.
    @Test func orderedNonFiniteValuesRankByBitPattern() throws {
        let x: [Float] = [1, .nan, -.infinity, 2, 0, -0.0]
        let largest = try #require(select(x, rank: 6, nonFinite: .ordered))
        #expect(largest.thresholdBits == Float.nan.bitPattern & 0x7FFF_FFFF && largest.keptCount == 1)
        let second = try #require(select(x, rank: 5, nonFinite: .ordered))
        #expect(second.thresholdBits == Float.infinity.bitPattern && second.keptCount == 2 && second.atThreshold == 1)
        let zeros = try #require(select(x, rank: 2, nonFinite: .ordered))
        #expect(zeros.thresholdBits == 0 && zeros.keptCount == 6 && zeros.atThreshold == 2 && zeros.keptZeros == 2)
        #expect(select(x, rank: 2) == nil)
    }

    /// The fused first pass (histogram, finiteness and moments in one read) against the separate
    /// ``ThresholdSelector/addCoarse(_:)`` and ``MomentAccumulator/add(_:)``: identical moments, bit for
    /// bit, and identical selections, over uneven chunks (every lane tail).
    @Test(arguments: sizes + [8, 9, 12, 16, 4_099])
    func fusedFirstPassEqualsSeparatePasses(n: Int) throws {
        for x in [Inputs.random(n, seed: UInt64(n) &+ 9), Inputs.ties(n, seed: UInt64(n) &+ 10),
                  Inputs.special(n, seed: UInt64(n) &+ 11), (0..<n).map { 1000 + Float($0 % 7) * 1e-4 }] {
            let m = n / 3
            var separate = ThresholdSelector(rank: m)
            var fused = ThresholdSelector(rank: m)
            var moments = MomentAccumulator()
            var fusedMoments = MomentAccumulator()
            var i = 0
            var step = 1
            while i < x.count {
                let chunk = x[i..<min(x.count, i + step)]
                let (okSeparate, okFused) = chunk.withUnsafeBufferPointer { c in
                    moments.add(c)
                    return (separate.addCoarse(c), fused.addCoarse(c, moments: &fusedMoments))
                }
                #expect(okSeparate && okFused)
                i += chunk.count
                step = step * 2 + 1
            }
            #expect(fusedMoments == moments, "n=\(n)")
            let a = separate.finishCoarse()
            let b = fused.finishCoarse()
            #expect(a == b)
            if a {
                x.withUnsafeBufferPointer { separate.addFine($0) }
                x.withUnsafeBufferPointer { fused.addFine($0) }
            }
            #expect(separate.finish() == fused.finish(), "n=\(n)")
        }
    }

    /// A chunk holding NaN or ±Inf in any lane (vector body or scalar tail) is refused and leaves no
    /// trace: neither counts nor moments.
    @Test func fusedFirstPassRefusesNonFiniteInEveryLane() {
        let good = Inputs.random(37, seed: 3)
        for bad in [Float.nan, .infinity, -.infinity, -Float.nan] {
            for position in [0, 3, 4, 7, 8, 15, 31, 35, 36] {
                var x = Inputs.random(37, seed: 4)
                x[position] = bad
                var selector = ThresholdSelector(rank: 10)
                var moments = MomentAccumulator()
                let refused = x.withUnsafeBufferPointer { selector.addCoarse($0, moments: &moments) }
                #expect(!refused, "\(bad) at \(position)")
                #expect(moments == MomentAccumulator())
                let accepted = good.withUnsafeBufferPointer { selector.addCoarse($0, moments: &moments) }
                #expect(accepted)
                var clean = ThresholdSelector(rank: 10)
                var cleanMoments = MomentAccumulator()
                _ = good.withUnsafeBufferPointer { clean.addCoarse($0, moments: &cleanMoments) }
                #expect(moments == cleanMoments)
                if selector.finishCoarse() { good.withUnsafeBufferPointer { selector.addFine($0) } }
                if clean.finishCoarse() { good.withUnsafeBufferPointer { clean.addFine($0) } }
                #expect(selector.finish() == clean.finish())
            }
        }
    }

    /// Selects with a window and `workers` selectors over interleaved chunks, through the fused pass.
    func selectWithWindow(_ x: [Float], rank: Int, window: Range<UInt32>?, capacity: Int = ThresholdSelector.windowHitCapacity,
                          workers: Int = 1) -> (ThresholdSelector.Result, resolvedInWindow: Bool) {
        let selectors = (0..<workers).map { _ in WorkerBox(ThresholdSelector(rank: rank, window: window, windowCapacity: capacity)) }
        var moments = MomentAccumulator()
        var i = 0
        var chunk = 0
        while i < x.count {
            let n = min(1000 + chunk % 7, x.count - i)
            let ok = x[i..<(i + n)].withUnsafeBufferPointer { selectors[chunk % workers].value.addCoarse($0, moments: &moments) }
            precondition(ok)
            i += n
            chunk += 1
        }
        for w in 1..<workers { selectors[0].value.absorbCoarse(selectors[w].value) }
        if selectors[0].value.finishCoarse() { x.withUnsafeBufferPointer { selectors[0].value.addFine($0) } }
        let result = selectors[0].value.finish()
        return (result, selectors[0].value.resolvedInWindow)
    }

    /// A window never changes the result: the threshold's bucket inside it (second pass skipped),
    /// outside it, at either end of the bucket range, past the collection capacity, over two workers.
    @Test func windowGivesTheSameSelectionWhereverItLies() throws {
        let n = 20_000
        for (kind, x) in [("random", Inputs.random(n, seed: 21)), ("ties", Inputs.ties(n, seed: 22)),
                          ("special", Inputs.special(n, seed: 23)), ("zeros", [Float](repeating: 0, count: n))] {
            for density in [0.5, 10, 50, 100] {
                let m = n - ReferenceCompeft.keepCount(n, density)
                let plain = try #require(select(x, rank: m))
                let bucket = plain.thresholdBits >> 16
                let windows: [Range<UInt32>] = [
                    bucket.subtractingReportingOverflow(3).overflow ? 0..<8 : (bucket - 3)..<(bucket + 5),
                    0..<8, 65_528..<65_536, (bucket &+ 9)..<(bucket &+ 17),
                ].filter { $0.upperBound <= 1 << 16 }
                for window in windows {
                    for workers in [1, 2] {
                        let (got, resolved) = selectWithWindow(x, rank: m, window: window, workers: workers)
                        #expect(got == plain, "\(kind) K=\(density) window \(window) workers \(workers)")
                        #expect(resolved == window.contains(bucket), "\(kind) K=\(density) window \(window)")
                    }
                }
                // Too many values in the window for the capacity: given up, still exact.
                if bucket >= 3 {
                    let (got, resolved) = selectWithWindow(x, rank: m, window: (bucket - 3)..<(bucket + 5), capacity: 16, workers: 2)
                    #expect(got == plain && !resolved, "\(kind) K=\(density) overflow")
                }
            }
        }
    }

    /// The sampled guess lands on the threshold's bucket for smooth large inputs (what makes it pay),
    /// and is nil for small ones.
    @Test func sampledWindowHoldsTheThresholdOfSmoothInputs() throws {
        #expect(ThresholdSelector.window(sampling: [sourceTensor("t", Inputs.random(1000, seed: 1))], rank: 500) == nil)
        var g = SplitMix64(seed: 77)
        let x = (0..<(1 << 21)).map { _ in
            // Laplace-like: a random sign times an exponential, the shape of task vectors.
            Float(-log(Double(g.next() >> 11 | 1) * 0x1p-53)) * (g.next() & 1 == 0 ? 0.01 : -0.01)
        }
        for density in [1.0, 10, 30] {
            let m = x.count - ReferenceCompeft.keepCount(x.count, density)
            let window = try #require(ThresholdSelector.window(sampling: [sourceTensor("a", Array(x[..<(1 << 20)])),
                                                                           sourceTensor("b", Array(x[(1 << 20)...]))], rank: m))
            let (got, resolved) = selectWithWindow(x, rank: m, window: window)
            #expect(resolved, "K=\(density) window \(window) threshold bucket \(got.thresholdBits >> 16)")
            #expect(got == (try #require(select(x, rank: m))))
        }
    }
}
