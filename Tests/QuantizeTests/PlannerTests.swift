import Foundation
import Quantize
import TaskVector
import Testing

@Suite struct PlannerTests {
    /// Plans and codes `tensors`, then expands each ternary code back to floats.
    func compress(_ tensors: [SourceTensor], _ options: CompressionOptions) throws -> (CompressionPlan, [[Float]]) {
        let plan = try Planner.plan(tensors, options: options, kind: .other)
        let chunks = ResidualChunks()
        var out: [[Float]] = []
        for (t, p) in zip(tensors, plan.tensors) {
            switch p.storage {
            case .exact:
                var v = [Float](repeating: 0, count: t.count)
                v.withUnsafeMutableBufferPointer { t.data.loadFloats(from: 0, into: $0) }
                out.append(v)
            case .ternary, .sparse:
                let code = TernaryCode.encode(t, thresholdBits: p.thresholdBits, keepValues: p.storage == .sparse, chunks: chunks)
                var v = [Float](repeating: 0, count: t.count)
                v.withUnsafeMutableBufferPointer { code.decode(scale: p.scale, into: $0) }
                out.append(v)
            }
        }
        return (plan, out)
    }

    static let alphas: [CompressionOptions.Alpha] = [.auto, .value(1), .value(2.5)]

    @Test(arguments: [CompressionOptions.Method.compeft, .stc, .prune])
    func globalScopeMatchesReferenceOnConcatenatedTensors(method: CompressionOptions.Method) throws {
        for seed in UInt64(1)...4 {
            // Three tensors given in name order; global scope concatenates them.
            let parts = [Inputs.random(300, seed: seed), Inputs.ties(513, seed: seed), Inputs.special(77, seed: seed)]
            let tensors = parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) }
            for density in [1.0, 5, 10, 20, 50, 100] {
                for alpha in Self.alphas {
                    let ref = ReferenceCompeft.run(parts.flatMap { $0 }, density: density, method: method, alpha: alpha)
                    let (plan, out) = try compress(tensors, .init(method: method, scope: .global, density: .percent(density), alpha: alpha))
                    let g = try #require(plan.global)
                    let ctx = "seed \(seed) K \(density) α \(alpha) \(method)"
                    if !ref.scale.isFinite {
                        // α·mean|kept| beyond Float's range: compeft keeps the values exactly instead of writing ±Inf.
                        #expect(plan.tensors.allSatisfy { $0.storage == .exact }, "\(ctx)")
                        continue
                    }
                    #expect(g.threshold == ref.threshold, "\(ctx)")
                    #expect(g.keptCount == ref.keptCount, "\(ctx)")
                    #expect(abs(g.sigma - ref.sigma) <= 1e-12 * ref.sigma, "\(ctx)")
                    // Scale within one ulp of the reference's f32 scale.
                    #expect(abs(g.scale - ref.scale) <= ref.scale.ulp, "\(ctx): \(g.scale) vs \(ref.scale)")
                    let flat = out.flatMap { $0 }
                    for i in flat.indices {
                        let r = ref.values[i]
                        if method == .prune {
                            #expect(flat[i] == r, "\(ctx) i=\(i)")
                        } else {
                            // Same kept set and sign; magnitude = scale.
                            #expect((flat[i] == 0) == (r == 0) && (flat[i] < 0) == (r < 0), "\(ctx) i=\(i)")
                            if r != 0 { #expect(abs(abs(flat[i]) - abs(r)) <= abs(r).ulp, "\(ctx) i=\(i)") }
                        }
                    }
                }
            }
        }
    }

    /// Inputs of 2²⁰ values or more are planned with a sampled threshold window, for every method (stc
    /// too: its Σ|kept| is a pass of its own): the plan is still the reference's, bit for bit.
    @Test(arguments: [CompressionOptions.Method.compeft, .stc, .prune])
    func largeInputsPlannedWithTheWindowMatchTheReference(method: CompressionOptions.Method) throws {
        var g = SplitMix64(seed: 31)
        // Laplace-like values, the shape of task vectors, in two tensors of 2¹⁹ + 3 and 2¹⁹ + 5 values.
        let x = (0..<((1 << 20) + 8)).map { _ in
            Float(-Foundation.log(Double(g.next() >> 11 | 1) * 0x1p-53)) * (g.next() & 1 == 0 ? 0.01 : -0.01)
        }
        let parts = [Array(x[..<((1 << 19) + 3)]), Array(x[((1 << 19) + 3)...])]
        let tensors = parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) }
        #expect(ThresholdSelector.window(sampling: tensors, rank: x.count / 2) != nil, "the input is sampled")
        for density in [1.0, 10, 30] {
            let ref = ReferenceCompeft.run(x, density: density, method: method, alpha: .auto)
            let plan = try Planner.plan(tensors, options: .init(method: method, density: .percent(density)), kind: .other)
            let group = try #require(plan.global)
            #expect(group.threshold == ref.threshold, "\(method) K \(density)")
            #expect(group.keptCount == ref.keptCount && group.keptNonzero == ref.keptNonzero, "\(method) K \(density)")
            // Scale within one ulp of the reference's f32 scale (sums in another order).
            if method != .prune { #expect(abs(group.scale - ref.scale) <= ref.scale.ulp, "\(method) K \(density)") }
        }
    }

    @Test func tensorScopeUsesEachTensorsOwnThresholdAndScale() throws {
        let a = Inputs.random(400, seed: 11).map { $0 * 10 }
        let b = Inputs.random(400, seed: 12)
        let (plan, out) = try compress([sourceTensor("a", a), sourceTensor("b", b)], .init(scope: .tensor, density: .percent(10)))
        #expect(plan.global == nil)
        for (i, x) in [a, b].enumerated() {
            let ref = ReferenceCompeft.run(x, density: 10)
            #expect(plan.perTensor[["a", "b"][i]]?.threshold == ref.threshold)
            #expect(out[i].map { $0 != 0 } == ref.values.map { $0 != 0 })
            #expect(abs(plan.tensors[i].scale - ref.scale) <= ref.scale.ulp)
        }
    }

    @Test func constantResidualHasZeroSigmaAndIsStoredExactly() throws {
        let (plan, out) = try compress([sourceTensor("c", [Float](repeating: 0.3, count: 50))], .init(density: .percent(10), alpha: .value(1)))
        #expect(plan.global?.sigma == 0)
        #expect(plan.tensors[0].storage == .exact)
        #expect(plan.tensors[0].exactReason?.contains("σ = 0") == true)
        #expect(out[0] == [Float](repeating: 0.3, count: 50))
    }

    @Test func oneElementTensorIsStoredExactly() throws {
        let (plan, _) = try compress([sourceTensor("one", [0.7])], .init(density: .percent(50)))
        #expect(plan.global?.sigma == 0)
        #expect(plan.tensors[0].storage == .exact)
    }

    @Test func nonFiniteResidualIsAnErrorNamingTheTensor() {
        var x = Inputs.random(10, seed: 1)
        x[3] = .nan
        #expect {
            try Planner.plan([sourceTensor("good", [1, 2]), sourceTensor("layer.bad", x)], options: .init(), kind: .other)
        } throws: { ($0 as? QuantizeError)?.tensor == "layer.bad" }
    }

    @Test func initOneSubtractsOneAndHalfPrecisionIsWidenedExactly() throws {
        // (IA)³ in f16: residual = w − 1 computed in f32 from the exactly widened f16 values.
        let w: [Float] = [1.5, 0.75, 1.0, 1.25, 0.5, 1.0009765625]
        for dtype in [DType.f16, .bf16, .f32, .f64] {
            let t = sourceTensor("ia3", w, initRule: .one, dtype: dtype)
            let (plan, _) = try compress([t], .init(density: .percent(50)))
            let ref = ReferenceCompeft.run(w.map { $0 - 1 }, density: 50)
            #expect(plan.global?.threshold == ref.threshold, "\(dtype)")
        }
    }
}
