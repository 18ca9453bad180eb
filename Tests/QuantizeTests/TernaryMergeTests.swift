import Quantize
import TaskVector
import Testing

/// The ternary-domain merge against the dense kernels on the expanded experts: equal values.
@Suite struct TernaryMergeTests {
    static let sizes = [0, 1, 2, 13, 63, 64, 65, 127, 128, 129, 1000, 4097]

    /// A repeatable generator (SplitMix64) so a failing seed can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A random sign-form code: each position nonzero with probability `density`.
    static func code(count: Int, density: Double, using g: inout Generator) -> TernaryCode {
        var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
        var signs: [UInt8] = []
        var nonzero = 0
        for i in 0..<count where Double.random(in: 0..<1, using: &g) < density {
            mask[i >> 3] |= 1 << UInt8(i & 7)
            if nonzero & 7 == 0 { signs.append(0) }
            if Bool.random(using: &g) { signs[nonzero >> 3] |= 1 << UInt8(nonzero & 7) }
            nonzero += 1
        }
        return TernaryCode(count: count, keptCount: nonzero, nonzeroCount: nonzero, mask: mask, signs: signs)
    }

    static func experts(count n: Int, k: Int, seed: UInt64) -> ([TernaryExpert], [Float]) {
        var g = Generator(state: seed)
        let scales: [Float] = [0.013, 0.5, 0, -1.7e-3, 3, 0.0071]
        let weights: [Float] = [1, 0.5, -0.3, 0, 1.25, -2]
        let densities = [0.1, 0.5, 0.95, 0.3, 1, 0.02]
        let experts = (0..<k).map { e in
            TernaryExpert(code: code(count: n, density: densities[e % 6], using: &g), scale: scales[e % 6])
        }
        return (experts, Array(weights.prefix(k)))
    }

    @Test(arguments: sizes)
    func taskArithmeticEqualsDenseOnExpandedExperts(_ n: Int) {
        for k in 1...6 {
            let (experts, weights) = Self.experts(count: n, k: k, seed: UInt64(n * 10 + k))
            let dense = TensorMerge.taskArithmetic(experts.map { $0.expanded() }, weights: weights, lambda: 0.9)
            let ternary = TernaryMerge.merge(experts, weights: weights, combination: .sum, lambda: 0.9)
            #expect(ternary == dense, "n \(n) k \(k)")
        }
    }

    @Test(arguments: sizes)
    func tiesEqualsDenseOnExpandedExperts(_ n: Int) {
        for k in 1...6 {
            for election in SignElection.allCases {
                let (experts, weights) = Self.experts(count: n, k: k, seed: UInt64(n * 10 + k) ^ 0xABC)
                let dense = TensorMerge.ties(experts.map { $0.expanded() }, weights: weights, density: .full,
                                             election: election)
                let ternary = TernaryMerge.merge(experts, weights: weights, combination: .disjointMean(election))
                #expect(ternary == dense, "n \(n) k \(k) \(election)")
            }
        }
    }

    @Test func overlappingExpertsElectAndAverage() {
        // Positions: 0 only A(+); 1 A(+) B(−); 2 A(−) B(−) C(+); 3 nobody.
        let a = TernaryCode(count: 4, keptCount: 3, nonzeroCount: 3, mask: [0b0111], signs: [0b100])
        let b = TernaryCode(count: 4, keptCount: 2, nonzeroCount: 2, mask: [0b0110], signs: [0b11])
        let c = TernaryCode(count: 4, keptCount: 1, nonzeroCount: 1, mask: [0b0100], signs: [0b0])
        let experts = [TernaryExpert(code: a, scale: 1), TernaryExpert(code: b, scale: 2), TernaryExpert(code: c, scale: 4)]
        let total = TernaryMerge.merge(experts, weights: [1, 1, 1], combination: .disjointMean(.total))
        // 1: +1 − 2 < 0 elects −, mean {−2}; 2: −1 − 2 + 4 > 0 elects +, mean {4}.
        #expect(total == [1, -2, 4, 0])
        let frequency = TernaryMerge.merge(experts, weights: [1, 1, 1], combination: .disjointMean(.frequency))
        // 1: one each elects +, mean {1}; 2: two − elect −, mean {−1, −2}.
        #expect(frequency == [1, 1, -1.5, 0])
        #expect(TernaryMerge.merge(experts, weights: [1, 1, 1], combination: .sum) == [1, -1, 1, 0])
    }

    @Test(arguments: [0, 1, 5, 100, 4097])
    func globalThresholdMatchesTopKOverTheConcatenation(_ extra: Int) throws {
        var g = Generator(state: UInt64(extra))
        let tensors = [300, 1, extra, 77].map { n in
            (0..<n).map { _ in Float.random(in: -1...1, using: &g) }
        }
        let all = tensors.flatMap { $0 }
        for fraction in [0.001, 0.05, 0.3, 0.999, 1] {
            let density = Density.fraction(fraction)
            let threshold = try MagnitudeThreshold.global(count: all.count, density: density) { visit in
                for t in tensors { t.withUnsafeBufferPointer(visit) }
            }
            let k = Int(fraction * Double(all.count))  // PEFT's int(density * numel)
            let expected = all.withUnsafeBufferPointer { MagnitudeThreshold.topK(of: $0, keeping: k) }
            // No ties in the data: the global (≥ t) and per-tensor (top-k) rules keep the same set.
            let viaGlobal = tensors.flatMap {
                TensorMerge.merge([$0], weights: [1], method: .magnitudePrune(density: density), thresholds: [threshold])
            }
            let viaTopK = TensorMerge.merge([all], weights: [1], method: .magnitudePrune(density: .fraction(0.5)), thresholds: [expected])
            #expect(viaGlobal == viaTopK, "density \(density)")
            #expect(viaGlobal.filter { $0 != 0 }.count == k)
        }
    }

    @Test func globalThresholdRejectsNonFiniteValues() {
        #expect {
            _ = try MagnitudeThreshold.global(count: 3, density: .fraction(0.5), expert: "a") { visit in
                [Float(1), .nan, 2].withUnsafeBufferPointer(visit)
            }
        } throws: { ($0 as? TaskVectorError)?.code == .nonFinite && ($0 as? TaskVectorError)?.file == "a" }
    }
}
