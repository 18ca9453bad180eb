import Foundation
import Quantize
import TaskVector
import Testing

/// The compression rules as ``Planner`` runs them: the defaults per kind of expert, the LoRA gauges, the
/// per-module product scale, the gauge choice, and what they do at the edges.
@Suite struct LoRARuleTests {
    /// A 2-D residual tensor (init 0, f32 unless said).
    static func matrix(_ name: String, _ rows: Int, _ cols: Int, _ values: [Float], dtype: DType = .f32) -> SourceTensor {
        var t = sourceTensor(name, values, dtype: dtype)
        t.shape = [rows, cols]
        return t
    }

    /// The tensors of LoRA modules `m0`, `m1`, … (sorted by name, as inputs are).
    static func modules(_ factors: [Factors], extra: [SourceTensor] = []) -> [SourceTensor] {
        var out = extra
        for (i, f) in factors.enumerated() {
            out.append(matrix("m\(i).lora_A.weight", f.r, f.inFeatures, f.a))
            out.append(matrix("m\(i).lora_B.weight", f.outFeatures, f.r, f.b))
        }
        return out.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    static func values(_ t: SourceTensor) -> [Float] {
        var v = [Float](repeating: 0, count: t.count)
        v.withUnsafeMutableBufferPointer { out in
            let chunks = ResidualChunks()
            chunks.forEach(t) { offset, chunk in for (k, x) in chunk.enumerated() { out[offset + k] = x } }
        }
        return v
    }

    /// What the container decodes each tensor to: ±scale on the kept positions of the coded tensor.
    static func decoded(_ plan: CompressionPlan, _ tensors: [SourceTensor]) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (i, tp) in plan.tensors.enumerated() {
            let t = plan.codedTensor(i, of: tensors)
            switch tp.storage {
            case .exact: out[t.name] = values(t)
            case .ternary, .sparse:
                let code = TernaryCode.encode(t, thresholdBits: tp.thresholdBits, keepValues: tp.storage == .sparse, chunks: ResidualChunks())
                var v = [Float](repeating: 0, count: t.count)
                v.withUnsafeMutableBufferPointer { code.decode(scale: tp.scale, into: $0) }
                out[t.name] = v
            }
        }
        return out
    }

    // MARK: The rule each kind of expert gets

    @Test func defaultsFollowTheKindOfExpert() throws {
        let o = CompressionOptions(density: .percent(10))
        #expect(try o.rule(for: .lora) == CompressionRule(method: .compeft, scope: .global, scale: .module, loraGauge: .auto, density: .percent(10), alpha: .auto))
        #expect(try o.rule(for: .ia3) == CompressionRule(method: .compeft, scope: .global, scale: .global, loraGauge: .trained, density: .percent(10), alpha: .auto))
        #expect(try o.rule(for: .other) == CompressionRule(method: .compeft, scope: .global, scale: .global, loraGauge: .trained, density: .percent(10), alpha: .auto))
        #expect(try o.rule(for: .fullFineTune) == CompressionRule(method: .compeft, scope: .tensor, scale: .tensor, loraGauge: .trained, density: .percent(10), alpha: .auto))
        // The paper's rule by name, on every kind.
        for kind in ExpertKind.allCases {
            #expect(try CompressionOptions.paper(alpha: .value(1)).rule(for: kind)
                    == CompressionRule(method: .compeft, scope: .global, scale: .global, loraGauge: .trained, density: .percent(20), alpha: .value(1)))
        }
        // An explicit α or stc on LoRA: the paper's scale in the trained gauge.
        #expect(try CompressionOptions(alpha: .value(1)).rule(for: .lora).scale == .global)
        #expect(try CompressionOptions(alpha: .value(1)).rule(for: .lora).loraGauge == .trained)
        #expect(try CompressionOptions(method: .stc).rule(for: .lora).loraGauge == .trained)
        // An explicit global scale on a full fine-tune keeps the global threshold.
        #expect(try CompressionOptions(scale: .global).rule(for: .fullFineTune).scope == .global)
        #expect(try CompressionOptions(scope: .tensor).rule(for: .lora).scale == .module)
        #expect(try CompressionOptions(loraGauge: .svd).rule(for: .lora) .scale == .module)
        #expect(try CompressionOptions(scale: .tensor).rule(for: .lora).loraGauge == .trained)
    }

    @Test func optionsThatDoNotGoTogetherAreRefused() {
        let refused: [(CompressionOptions, ExpertKind, String)] = [
            (.init(scale: .module, alpha: .value(1)), .lora, "--scale module"),
            (.init(method: .stc, scale: .module), .lora, "--scale module"),
            (.init(scope: .tensor, scale: .global), .other, "--scale global needs --scope global"),
            (.init(loraGauge: .svd), .ia3, "applies to LoRA adapters"),
            (.init(loraGauge: .auto), .fullFineTune, "applies to LoRA adapters"),
            (.init(method: .prune, loraGauge: .auto), .lora, "--method prune"),
        ]
        for (o, kind, message) in refused {
            #expect(throws: QuantizeError.self) { _ = try o.rule(for: kind) }
            do { _ = try o.rule(for: kind) } catch { #expect(error.message.contains(message), "\(error.message)") }
        }
        #expect((try? CompressionOptions(loraGauge: .trained).rule(for: .ia3)) != nil)
    }

    @Test func loraPairsAreFoundByNameAndShape() {
        let f = Factors.random(r: 2, in: 3, out: 4, seed: 1)
        var tensors = Self.modules([f, f])
        tensors.append(Self.matrix("m0.lora_B.bias", 1, 4, [1, 2, 3, 4]))
        tensors.append(Self.matrix("x.lora_A.weight", 2, 3, f.a))  // no partner
        tensors.append(Self.matrix("y.lora_A.weight", 2, 3, f.a))
        tensors.append(Self.matrix("y.lora_B.weight", 3, 4, [Float](repeating: 1, count: 12)))  // rank does not fit
        tensors.append(Self.matrix("emb.lora_embedding_A", 2, 3, f.a))
        tensors.append(Self.matrix("emb.lora_embedding_B", 4, 2, f.b))
        tensors.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let pairs = LoRAModule.pairs(in: tensors)
        #expect(pairs.map(\.name) == ["emb", "m0", "m1"])
        #expect(pairs.allSatisfy { $0.rank == 2 && $0.inFeatures == 3 && $0.outFeatures == 4 })
        // A convolution's factors: A (r, in, kh, kw), B (out, r, 1, 1).
        var a = sourceTensor("c.lora_A.weight", Factors.random(r: 2, in: 12, out: 1, seed: 2).a)
        a.shape = [2, 3, 2, 2]
        var b = sourceTensor("c.lora_B.weight", Factors.random(r: 2, in: 1, out: 5, seed: 2).b)
        b.shape = [5, 2, 1, 1]
        let conv = LoRAModule.pairs(in: [a, b])
        #expect(conv == [LoRAModule(name: "c", a: 0, b: 1, rank: 2, inFeatures: 12, outFeatures: 5)])
    }

    // MARK: The per-module product scale

    @Test(arguments: [CompressionOptions.LoRAGauge.trained, .svd, .svdDCT, .auto])
    func moduleScaleKeepsEachProductsNorm(_ gauge: CompressionOptions.LoRAGauge) throws {
        let factors = (0..<4).map { Factors.random(r: [4, 8, 1, 3][$0], in: 20 + $0, out: 12, seed: UInt64($0) + 10, scaleB: 0.05) }
        let tensors = Self.modules(factors)
        for density in [2.0, 10, 30, 100] {
            let plan = try Planner.plan(tensors, options: .init(loraGauge: gauge, density: .percent(density)), kind: .lora)
            let lora = try #require(plan.lora)
            #expect(lora.gauge == (gauge == .auto ? lora.gauge : gauge) && lora.gauge != .auto)
            let out = Self.decoded(plan, tensors)
            for (m, f) in factors.enumerated() {
                let module = lora.modules[m]
                let a = plan.tensors.first { $0.name == "m\(m).lora_A.weight" }!
                let b = plan.tensors.first { $0.name == "m\(m).lora_B.weight" }!
                #expect(a.scale == b.scale, "one scale per module")
                let restored = Factors(r: f.r, inFeatures: f.inFeatures, outFeatures: f.outFeatures,
                                       a: out["m\(m).lora_A.weight"]!, b: out["m\(m).lora_B.weight"]!)
                let n2 = f.product.squaredNorm
                if let c = module.scale, c > 0 {
                    #expect(a.scale == Float(c.squareRoot()))
                    #expect(abs(restored.product.squaredNorm - n2) <= 1e-5 * n2, "K \(density) m\(m): ‖ΔŴ‖² \(restored.product.squaredNorm) vs \(n2)")
                    // The error the plan reports is the error of what decodes (up to binary32 rounding of √c).
                    let d = LoRAGaugeTests.distance(restored.product, f.product)
                    #expect(abs(d * d - module.squaredError!) <= 1e-4 * n2, "K \(density) m\(m): error")
                } else {
                    #expect(restored.product.squaredNorm == 0 && module.keepsNothing)
                }
                #expect(abs(module.product.normSquared - n2) <= 1e-9 * n2)
            }
        }
    }

    @Test func aModuleWhoseProductKeepsNothingIsCodedEmpty() throws {
        // Module 0 is tiny next to module 1: the global threshold keeps none of it. Module 2 is at init (B = 0).
        var tiny = Factors.random(r: 4, in: 16, out: 16, seed: 1)
        tiny.a = tiny.a.map { $0 * 1e-3 }
        tiny.b = tiny.b.map { $0 * 1e-3 }
        var atInit = Factors.random(r: 4, in: 16, out: 16, seed: 3)
        atInit.b = [Float](repeating: 0, count: atInit.b.count)
        let tensors = Self.modules([tiny, Factors.random(r: 4, in: 16, out: 16, seed: 2), atInit])
        for gauge in [CompressionOptions.LoRAGauge.trained, .svd, .auto] {
            let plan = try Planner.plan(tensors, options: .init(loraGauge: gauge, density: .percent(5)), kind: .lora)
            let lora = try #require(plan.lora)
            for m in [0, 2] {
                #expect(lora.modules[m].keepsNothing && lora.modules[m].squaredError == lora.modules[m].product.normSquared)
                for name in ["m\(m).lora_A.weight", "m\(m).lora_B.weight"] {
                    let tp = plan.tensors.first { $0.name == name }!
                    #expect(tp.storage == .ternary && tp.scale == 0 && tp.thresholdBits == TensorPlan.keepNothing, "\(gauge) \(name)")
                }
            }
            #expect(!lora.modules[1].keepsNothing)
            #expect(plan.notes.contains { $0.contains("1 of 3 LoRA module(s) keep nothing") }, "\(plan.notes)")
        }
    }

    @Test func residualsOutsideLoRAPairsGetTheirOwnNormPreservingScale() throws {
        let f = Factors.random(r: 3, in: 10, out: 8, seed: 5, scaleB: 0.2)
        let bias = Self.matrix("m0.lora_B.bias", 1, 8, Inputs.random(8, seed: 9))
        let tensors = Self.modules([f], extra: [bias])
        let plan = try Planner.plan(tensors, options: .init(density: .percent(30)), kind: .lora)
        let tp = plan.tensors.first { $0.name == "m0.lora_B.bias" }!
        let t = plan.global!.threshold.bitPattern
        let v = Self.values(bias)
        let kept = v.filter { $0.bitPattern & 0x7FFF_FFFF >= t && $0 != 0 }.count
        let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(tp.storage == .ternary && tp.thresholdBits == t)
        #expect(kept == 0 ? tp.scale == 0 : tp.scale == Float(norm / Double(kept).squareRoot()))
        #expect(plan.lora?.modules.count == 1)
    }

    // MARK: The gauge choice

    @Test func autoTakesTheGaugeWithTheSmallerProductErrorAndSVDOnTies() throws {
        for seed in UInt64(1)...8 {
            let tensors = Self.modules((0..<3).map { Factors.random(r: 6, in: 24, out: 18, seed: seed * 10 + UInt64($0), scaleB: 0.1) })
            for density in [1.0, 5, 20, 40] {
                let plan = try Planner.plan(tensors, options: .init(density: .percent(density)), kind: .lora)
                let lora = try #require(plan.lora)
                #expect(lora.candidates.map(\.gauge) == [.svd, .svdDCT])
                let best = lora.candidates[0].squaredError <= lora.candidates[1].squaredError ? CompressionOptions.LoRAGauge.svd : .svdDCT
                #expect(lora.gauge == best, "seed \(seed) K \(density)")
                // Each candidate's error is the one that gauge alone plans.
                for c in lora.candidates {
                    let alone = try Planner.plan(tensors, options: .init(loraGauge: c.gauge, density: .percent(density)), kind: .lora)
                    #expect(alone.lora!.candidates == [c])
                }
            }
        }
        // Rank 1: the DCT of size 1 is the identity, so both gauges tie, and the tie goes to svd.
        let ones = Self.modules((0..<3).map { Factors.random(r: 1, in: 9, out: 7, seed: UInt64($0)) })
        let plan = try Planner.plan(ones, options: .init(density: .percent(20)), kind: .lora)
        #expect(plan.lora!.candidates[0].squaredError == plan.lora!.candidates[1].squaredError)
        #expect(plan.lora!.gauge == .svd)
    }

    @Test func planDoesNotDependOnTheThreadCount() throws {
        let tensors = Self.modules((0..<7).map { Factors.random(r: 4 + $0 % 3, in: 30, out: 20 + $0, seed: UInt64($0) + 70, scaleB: 0.2) },
                                   extra: [Self.matrix("head.lora_B.bias", 1, 40, Inputs.random(40, seed: 77))])
        for options in [CompressionOptions(density: .percent(7)), .init(scope: .tensor, density: .percent(15)),
                        .init(scale: .tensor, loraGauge: .svd, density: .percent(12))] {
            let one = try Planner.plan(tensors, options: options, kind: .lora, threads: 1)
            for threads in [2, 3, 8] {
                let many = try Planner.plan(tensors, options: options, kind: .lora, threads: threads)
                #expect(many.tensors == one.tensors, "\(threads) threads")
                #expect(many.lora!.modules == one.lora!.modules && many.lora!.candidates == one.lora!.candidates)
                #expect(many.global == one.global && many.perTensor == one.perTensor)
            }
        }
    }

    @Test func nonFiniteFactorsAreRefusedNamingTheTensor() {
        for bad in [Float.nan, .infinity, -.infinity] {
            var f = Factors.random(r: 2, in: 5, out: 4, seed: 1)
            f.b[3] = bad
            let tensors = Self.modules([f])
            for gauge in CompressionOptions.LoRAGauge.allCases {
                do {
                    _ = try Planner.plan(tensors, options: .init(loraGauge: gauge), kind: .lora)
                    Issue.record("\(bad) in lora_B was accepted (\(gauge))")
                } catch let error as QuantizeError {
                    #expect(error.tensor == "m0.lora_B.weight" && error.message.contains("NaN or ±Inf"), "\(error)")
                } catch {
                    Issue.record("\(error)")
                }
            }
        }
    }

    @Test func edgeShapesPlanAndKeepTheProduct() throws {
        // r > min(in, out); one element; an empty factor; bf16 factors.
        let cases: [(Factors, DType)] = [
            (Factors.random(r: 6, in: 3, out: 4, seed: 1), .f32), (Factors.random(r: 1, in: 1, out: 1, seed: 2), .f32),
            (Factors.random(r: 3, in: 0, out: 4, seed: 3), .f32), (Factors.random(r: 4, in: 9, out: 5, seed: 4), .bf16),
        ]
        for (f, dtype) in cases {
            let tensors = [Self.matrix("m.lora_A.weight", f.r, f.inFeatures, f.a, dtype: dtype),
                           Self.matrix("m.lora_B.weight", f.outFeatures, f.r, f.b, dtype: dtype)]
            for density in [1.0, 50, 100] {
                let plan = try Planner.plan(tensors, options: .init(density: .percent(density)), kind: .lora)
                let lora = try #require(plan.lora)
                #expect(lora.modules.count == 1)
                if density == 100, f.inFeatures > 0 {
                    // Everything kept: the product keeps its norm.
                    let out = Self.decoded(plan, tensors)
                    let g = Factors(r: f.r, inFeatures: f.inFeatures, outFeatures: f.outFeatures, a: out["m.lora_A.weight"]!, b: out["m.lora_B.weight"]!)
                    let n2 = lora.modules[0].product.normSquared
                    #expect(abs(g.product.squaredNorm - n2) <= 1e-5 * n2, "r \(f.r) in \(f.inFeatures) out \(f.outFeatures)")
                }
            }
        }
    }

    @Test func trainedGaugeWithAGlobalScaleIsThePapersRule() throws {
        let tensors = Self.modules((0..<3).map { Factors.random(r: 4, in: 12, out: 10, seed: UInt64($0) + 5, scaleB: 0.01) })
        for density in [1.0, 10, 30] {
            for alpha in [CompressionOptions.Alpha.auto, .value(1)] {
                let named = try Planner.plan(tensors, options: .paper(density: .percent(density), alpha: alpha), kind: .lora)
                let legacy = try Planner.plan(tensors, options: .init(scope: .global, density: .percent(density), alpha: alpha), kind: .other)
                #expect(named.tensors == legacy.tensors && named.global == legacy.global)
                #expect(named.lora == nil && named.codedTensors == nil)
            }
        }
    }

    @Test func tensorScaleOnTheGlobalMaskMatchesThePlainReference() throws {
        let parts = [Inputs.random(50, seed: 1).map { $0 * 0.1 }, Inputs.random(80, seed: 2), Inputs.ties(40, seed: 3),
                     [Float](repeating: 0, count: 12)]
        let tensors = parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) }
        for density in [5.0, 20, 60] {
            let plan = try Planner.plan(tensors, options: .init(scale: .tensor, density: .percent(density)), kind: .other)
            let t = plan.global!.threshold.bitPattern
            for (i, v) in parts.enumerated() {
                let tp = plan.tensors[i]
                let kept = v.filter { $0.bitPattern & 0x7FFF_FFFF >= t && $0 != 0 }.count
                let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                let mean = v.reduce(0.0) { $0 + Double($1) } / Double(v.count)
                let sigma = (v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(v.count - 1)).squareRoot()
                if sigma == 0 {
                    #expect(tp.storage == .exact, "t\(i)")
                } else {
                    #expect(tp.storage == .ternary && tp.thresholdBits == t)
                    #expect(kept == 0 ? tp.scale == 0 : abs(Double(tp.scale) - norm / Double(kept).squareRoot()) <= Double(tp.scale.ulp), "K \(density) t\(i)")
                    #expect(abs(tp.sigma! - sigma) <= 1e-12 * sigma)
                }
            }
        }
    }
}
