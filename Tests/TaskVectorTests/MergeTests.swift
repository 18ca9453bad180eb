import Testing
import TaskVector

/// The dense merge kernels against plain references, at block and word boundaries.
@Suite struct MergeTests {
    static let sizes = [0, 1, 2, 7, 13, 64, 65, 127, 128, 129, 4095, 4096, 4097, 9000]

    // MARK: - References

    /// PEFT's `magnitude_based_pruning` written plainly: sort by descending |τ| (ties: lower index
    /// first), keep the first k.
    static func referenceTrim(_ x: [Float], keep k: Int) -> [Float] {
        let order = x.indices.sorted {
            let a = x[$0].magnitude.bitPattern, b = x[$1].magnitude.bitPattern
            return a != b ? a > b : $0 < $1
        }
        var kept = [Bool](repeating: false, count: x.count)
        for i in order.prefix(max(k, 0)) { kept[i] = true }
        return x.indices.map { kept[$0] ? x[$0] : x[$0] * 0 }
    }

    /// TIES election and disjoint mean, one element at a time.
    static func referenceDisjointMean(_ trimmed: [[Float]], weights: [Float], election: SignElection) -> [Float] {
        let n = trimmed.first?.count ?? 0
        return (0..<n).map { i in
            var elected: Float = 0
            for t in trimmed {
                let v = t[i]
                elected += election == .total ? v : (v > 0 ? 1 : v < 0 ? -1 : 0)
            }
            let sign: Float = elected >= 0 ? 1 : -1
            var mixed: Float = 0
            var count: Float = 0
            for (e, t) in trimmed.enumerated() where t[i] * sign > 0 {
                mixed += t[i] * weights[e]
                count += 1
            }
            return mixed / max(count, 1)
        }
    }

    static func experts(_ k: Int, _ n: Int, seed: UInt64, ties: Bool = false) -> [[Float]] {
        var g = SeededGenerator(seed: seed)
        return (0..<k).map { _ in
            ties ? (0..<n).map { _ in Float(Int.random(in: -4...4, using: &g)) / 4 } : g.normals(n)
        }
    }

    // MARK: - Trim

    @Test(arguments: sizes)
    func topKKeepsLargestMagnitudesLowestIndexAtTies(_ n: Int) {
        for seed: UInt64 in [1, 2] {
            let x = Self.experts(1, n, seed: seed &+ UInt64(n), ties: seed == 2)[0]
            for k in Set([0, 1, n / 3, n / 2, n - 1, n, n + 1]) where k >= 0 {
                let threshold = x.withUnsafeBufferPointer { MagnitudeThreshold.topK(of: $0, keeping: k) }
                let trimmed = TensorMerge.merge([x], weights: [1], method: .magnitudePrune(density: .fraction(0.5)),
                                                thresholds: [threshold])
                #expect(trimmed == Self.referenceTrim(x, keep: k), "n \(n) k \(k) seed \(seed)")
                let kept = trimmed.filter { $0 != 0 }.count
                #expect(kept == min(k, x.filter { $0 != 0 }.count) || x.contains(0), "n \(n) k \(k)")
            }
        }
    }

    @Test func topKTreatsSignedZerosAlikeAndNaNAsLargest() {
        let x: [Float] = [-0.0, 0.0, 1, .nan, -.infinity, 2, -0.0]
        let keep = { (k: Int) in x.withUnsafeBufferPointer { MagnitudeThreshold.topK(of: $0, keeping: k) } }
        // NaN orders above +∞ (as torch.topk), then ∞, 2, 1, then the zeros by index.
        #expect(keep(1) == MagnitudeThreshold(bits: Float.nan.bitPattern & 0x7FFF_FFFF, tiesKept: 1))
        #expect(keep(2) == MagnitudeThreshold(bits: Float.infinity.bitPattern, tiesKept: 1))
        #expect(keep(5) == MagnitudeThreshold(bits: 0, tiesKept: 1))
        #expect(keep(6) == MagnitudeThreshold(bits: 0, tiesKept: 2))
    }

    @Test func globalThresholdKeepsEveryTie() {
        let x: [Float] = [0.5, -0.5, 0.25, 1, -0.5]
        let out = TensorMerge.merge([x], weights: [1], method: .ties(density: .fraction(0.2), election: .total),
                                    thresholds: [.atLeast(0.5)])
        #expect(out == [0.5, -0.5, 0, 1, -0.5])
        let none = TensorMerge.merge([x], weights: [1], method: .magnitudePrune(density: .fraction(0.2)), thresholds: [.keepNone])
        #expect(none.allSatisfy { $0 == 0 })
    }

    // MARK: - Methods against references

    @Test(arguments: sizes)
    func taskArithmeticIsTheWeightedSum(_ n: Int) {
        let x = Self.experts(3, n, seed: 10 &+ UInt64(n))
        let w: [Float] = [1, 0.5, -0.3]
        let expected = (0..<n).map { i in ((0 + x[0][i] * w[0]) + x[1][i] * w[1]) + x[2][i] * w[2] }
        #expect(TensorMerge.taskArithmetic(x, weights: w) == expected)
    }

    @Test(arguments: sizes)
    func tiesMatchesPlainReference(_ n: Int) {
        for (seed, ties) in [(UInt64(20), false), (21, true)] {
            let x = Self.experts(4, n, seed: seed &+ UInt64(n), ties: ties)
            let w: [Float] = [0.7, -1.1, 0.4, 1]
            for fraction in [0.001, 0.3, 0.75, 1] {
                let k = fraction == 1 ? n : Int(fraction * Double(n))  // PEFT's int(density * numel)
                let trimmed = x.map { Self.referenceTrim($0, keep: k) }
                for election in SignElection.allCases {
                    let expected = Self.referenceDisjointMean(trimmed, weights: w, election: election)
                    let actual = TensorMerge.ties(x, weights: w, density: .fraction(fraction), election: election)
                    #expect(actual == expected, "n \(n) density \(fraction) \(election) seed \(seed)")
                }
            }
        }
    }

    @Test(arguments: sizes)
    func magnitudePruneIsTrimThenSum(_ n: Int) {
        let x = Self.experts(2, n, seed: 30 &+ UInt64(n), ties: true)
        let k = Int(0.4 * Double(n))
        let t = x.map { Self.referenceTrim($0, keep: k) }
        let expected = (0..<n).map { i in (0 + t[0][i] * 2) + t[1][i] * -0.5 }
        #expect(TensorMerge.magnitudePrune(x, weights: [2, -0.5], density: .fraction(0.4)) == expected)
    }

    @Test(arguments: sizes)
    func dareRescalesTheSurvivorsOfItsMask(_ n: Int) {
        let x = Self.experts(2, n, seed: 40 &+ UInt64(n))
        let masks = [DropMask.random(count: n, density: .fraction(0.3), seed: 5, tensor: "t", expert: 0),
                     DropMask.random(count: n, density: .fraction(0.3), seed: 5, tensor: "t", expert: 1)]
        let d = Float(0.3)
        let t = (0..<2).map { e in (0..<n).map { i in (masks[e][i] ? x[e][i] : 0) / d } }
        let linear = (0..<n).map { i in (0 + t[0][i] * 1.5) + t[1][i] * 0.5 }
        #expect(TensorMerge.dareLinear(x, weights: [1.5, 0.5], density: .fraction(0.3), masks: masks) == linear)
        #expect(TensorMerge.dareLinear(x, weights: [1.5, 0.5], density: .fraction(0.3), seed: 5, tensor: "t") == linear)
        let ties = Self.referenceDisjointMean(t, weights: [1.5, 0.5], election: .frequency)
        #expect(TensorMerge.dareTies(x, weights: [1.5, 0.5], density: .fraction(0.3), seed: 5, tensor: "t", election: .frequency) == ties)
    }

    @Test func densityOneLeavesEveryExpertUntouched() {
        let x = Self.experts(3, 100, seed: 50)
        let w: [Float] = [1, 1, 1]
        #expect(TensorMerge.magnitudePrune(x, weights: w, density: .full) == TensorMerge.taskArithmetic(x, weights: w))
        #expect(TensorMerge.dareLinear(x, weights: w, density: .full, seed: 9) == TensorMerge.taskArithmetic(x, weights: w))
        #expect(TensorMerge.dareTies(x, weights: w, density: .full, seed: 9) == TensorMerge.ties(x, weights: w, density: .full))
    }

    @Test func lambdaScalesTheMergedResidual() {
        let x = Self.experts(3, 300, seed: 60)
        let w: [Float] = [1, 0.5, -0.3]
        for method in [MergeMethod.taskArithmetic, .ties(density: .fraction(0.5), election: .total), .dareTies(density: .fraction(0.5), election: .frequency)] {
            let plain = TensorMerge.merge(x, weights: w, method: method, seed: 3)
            let scaled = TensorMerge.merge(x, weights: w, method: method, lambda: 0.75, seed: 3)
            #expect(scaled == plain.map { $0 * 0.75 }, "\(method)")
        }
    }

    @Test func zerosNeverAgreeAndEmptyColumnsMergeToZero() {
        let x: [[Float]] = [[0, 1, -2, 0], [0, -1, 3, 0], [0, 0, -4, 5]]
        let out = TensorMerge.ties(x, weights: [1, 1, 1], density: .full, election: .frequency)
        // column 1: one + and one − elects +, mean of {1}; column 2: two − elect −, mean of {−2, −4}.
        #expect(out == [0, 1, -3, 5])
        let total = TensorMerge.ties(x, weights: [1, 1, 1], density: .full, election: .total)
        // column 2: −2 + 3 − 4 < 0 elects −; column 1: 1 − 1 = 0 elects +.
        #expect(total == [0, 1, -3, 5])
    }

    @Test func bufferAndArrayEntryPointsAgree() {
        let x = Self.experts(3, 5000, seed: 70)
        let method = MergeMethod.dareTies(density: .fraction(0.4), election: .total)
        let expected = TensorMerge.merge(x, weights: [1, 2, 3], method: method, seed: 11, tensor: "w")
        var out = [Float](repeating: .nan, count: 5000)
        x[0].withUnsafeBufferPointer { a in
            x[1].withUnsafeBufferPointer { b in
                x[2].withUnsafeBufferPointer { c in
                    out.withUnsafeMutableBufferPointer {
                        TensorMerge.merge([a, b, c], weights: [1, 2, 3], method: method, seed: 11, tensor: "w", into: $0)
                    }
                }
            }
        }
        #expect(out == expected)
    }

    // MARK: - DARE's random stream

    @Test func xoshiroMatchesTheReferenceSequence() {
        // xoshiro256** from state (1, 2, 3, 4), as in the authors' reference implementation.
        var g = Xoshiro256StarStar(state: (1, 2, 3, 4))
        let expected: [UInt64] = [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240,
                                  1_216_172_134_540_287_360, 607_988_272_756_665_600,
                                  16_172_922_978_634_559_625, 8_476_171_486_693_032_832,
                                  10_595_114_339_597_558_777, 2_904_607_092_377_533_576]
        #expect((0..<10).map { _ in g.next() } == expected)
        var s: UInt64 = 1_234_567
        let splitMix = (0..<3).map { _ in Xoshiro256StarStar.splitMix64(&s) }
        #expect(splitMix == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423])
    }

    @Test func dareStreamIsPinned() throws {
        // Changing these values changes every seeded DARE merge ever made. They were computed by
        // the second implementation of the stream in make_merge_fixtures.py.
        let mask = DropMask.random(count: 128, density: .fraction(0.5), seed: 42, tensor: "layer.0.weight", expert: 1)
        #expect(mask.words == [1_080_039_092_697_231_495, 5_694_670_270_335_963_050])
        #expect(DropMask.streamKey(seed: 42, tensor: "layer.0.weight", expert: 1) == 1_314_264_934_575_842_452)
        struct Case: Decodable {
            let count: Int, density: Double, seed: String, tensor: String, expert: Int, words: [String]
        }
        struct File: Decodable { let cases: [Case] }
        let cases = try MergeFixtures.json("dare_stream", as: File.self).cases
        #expect(cases.count == 4)
        for c in cases {
            let mask = DropMask.random(count: c.count, density: try Density(fraction: c.density), seed: try #require(UInt64(c.seed)),
                                       tensor: c.tensor, expert: c.expert)
            #expect(mask.words == c.words.compactMap(UInt64.init), "\(c.tensor) seed \(c.seed)")
        }
    }

    @Test func sameSeedGivesTheSameBitsAndOtherSeedsDoNot() {
        let x = Self.experts(3, 2000, seed: 80)
        let w: [Float] = [1, 0.5, -0.3]
        let method = MergeMethod.dareLinear(density: .fraction(0.5))
        let a = TensorMerge.merge(x, weights: w, method: method, seed: 7, tensor: "q")
        let b = TensorMerge.merge(x, weights: w, method: method, seed: 7, tensor: "q")
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(TensorMerge.merge(x, weights: w, method: method, seed: 8, tensor: "q") != a)
        #expect(TensorMerge.merge(x, weights: w, method: method, seed: 7, tensor: "k") != a)
        let m0 = DropMask.random(count: 2000, density: .fraction(0.5), seed: 7, tensor: "q", expert: 0)
        let m1 = DropMask.random(count: 2000, density: .fraction(0.5), seed: 7, tensor: "q", expert: 1)
        #expect(m0 != m1)
    }

    @Test(arguments: [0.1, 0.5, 0.9])
    func dareKeepsAboutTheDensity(_ density: Double) {
        let n = 100_000
        let mask = DropMask.random(count: n, density: .fraction(density), seed: 1, tensor: "x", expert: 0)
        let expected = density * Double(n)
        let sd = (Double(n) * density * (1 - density)).squareRoot()
        #expect((Double(mask.keptCount) - expected).magnitude < 5 * sd)
    }

    @Test func dropMaskClearsBitsPastItsCount() {
        let mask = DropMask(count: 3, words: [.max])
        #expect(mask.words == [0b111])
        #expect(mask.keptCount == 3)
        #expect(DropMask(keeping: [true, false, true]).words == [0b101])
    }
}

/// Programmer errors in the kernels trap.
@Suite struct MergeTrapTests {
    @Test func aZeroDensityCannotBeWrittenInCode() async {
        // DARE divides by the density: the type has no zero to divide by, and a literal 0 traps.
        await #expect(processExitsWith: .failure) { _ = Density.fraction(0) }
        await #expect(processExitsWith: .failure) { _ = Density.percent(0) }
    }

    @Test func mergeRejectsExpertsOfDifferentLengths() async {
        await #expect(processExitsWith: .failure) {
            _ = TensorMerge.taskArithmetic([[1, 2], [1]], weights: [1, 1])
        }
    }

    @Test func mergeRejectsAMissingWeight() async {
        await #expect(processExitsWith: .failure) {
            _ = TensorMerge.ties([[1, 2], [3, 4]], weights: [1], density: .fraction(0.5))
        }
    }
}
