import Foundation
import Testing
import TaskVector

/// LoRA merges: PEFT's add_weighted_adapter fixtures, and the exact and truncated merges against
/// the dense Σ wᵢ sᵢ Bᵢ Aᵢ in Double.
@Suite struct LoRAMergeTests {
    struct Adapter: Decodable { let r: Int, lora_alpha: Double, use_rslora: Bool, scaling: Double }
    struct Layer: Decodable { let in_features: Int, out_features: Int }
    struct Merge: Decodable {
        let name: String, adapters: [String], weights: [Double], combination_type: String
        let r: Int, lora_alpha: Double, use_rslora: Bool
        let density: Double?, majority_sign_method: String?, svd_rank: Int?
    }
    struct File: Decodable { let adapters: [String: Adapter], layers: [String: Layer], merges: [Merge] }

    static func load() throws -> (File, MergeFixtures) {
        (try MergeFixtures.json("lora", as: File.self), try MergeFixtures("lora"))
    }

    static func factors(_ layer: String, _ name: String, file: File, fixtures: MergeFixtures) throws -> LoRAFactors {
        let info = try #require(file.layers[layer])
        let config = try #require(file.adapters[name])
        return LoRAFactors(a: try fixtures.floats("\(layer).\(name).A"), b: try fixtures.floats("\(layer).\(name).B"),
                           inFeatures: info.in_features, outFeatures: info.out_features,
                           scaling: LoRAScaling(rank: config.r, alpha: config.lora_alpha, useRSLoRA: config.use_rslora))
    }

    /// Σ wᵢ sᵢ Bᵢ Aᵢ in Double.
    static func denseSum(_ adapters: [LoRAFactors], weights: [Double]) -> Matrix {
        var sum = Matrix(zeros: adapters[0].outFeatures, adapters[0].inFeatures)
        for (adapter, w) in zip(adapters, weights) {
            let d = adapter.deltaWeight
            for i in sum.elements.indices { sum.elements[i] += w * d.elements[i] }
        }
        return sum
    }

    static func relativeError(_ a: Matrix, _ b: Matrix) -> Double {
        let diff = zip(a.elements, b.elements).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return (diff / max(b.squaredNorm, .leastNormalMagnitude)).squareRoot()
    }

    static func randomAdapter(out m: Int, in n: Int, rank r: Int, alpha: Double, rsLoRA: Bool = false,
                              seed: UInt64) -> LoRAFactors {
        var g = SeededGenerator(seed: seed)
        return LoRAFactors(a: g.normals(r * n), b: g.normals(m * r), inFeatures: n, outFeatures: m,
                           scaling: LoRAScaling(rank: r, alpha: alpha, useRSLoRA: rsLoRA))
    }

    // MARK: - PEFT parity

    @Test func scalingsMatchPEFT() throws {
        let (file, _) = try Self.load()
        for (name, a) in file.adapters {
            #expect(LoRAScaling(rank: a.r, alpha: a.lora_alpha, useRSLoRA: a.use_rslora).scale == a.scaling, "\(name)")
        }
    }

    @Test func deltaWeightMatchesPEFT() throws {
        let (file, fixtures) = try Self.load()
        for layer in file.layers.keys {
            for name in file.adapters.keys {
                let f = try Self.factors(layer, name, file: file, fixtures: fixtures)
                let expected = Matrix(rows: f.outFeatures, cols: f.inFeatures,
                                      floats: try fixtures.floats("\(layer).\(name).delta"))
                #expect(Self.relativeError(f.deltaWeight, expected) < 1e-6, "\(layer) \(name)")
            }
        }
    }

    @Test(arguments: ["m_linear", "m_ties", "m_ties_freq", "m_prune", "m_cat"])
    func factorMergesMatchAddWeightedAdapter(_ mergeName: String) throws {
        let (file, fixtures) = try Self.load()
        let merge = try #require(file.merges.first { $0.name == mergeName })
        for layer in file.layers.keys.sorted() {
            let adapters = try merge.adapters.map { try Self.factors(layer, $0, file: file, fixtures: fixtures) }
            let election = SignElection(rawValue: merge.majority_sign_method ?? "total")!
            let result: LoRAFactors = switch merge.combination_type {
            case "cat": try LoRAMerge.exact(adapters, weights: merge.weights, module: layer)
            case "linear": try LoRAMerge.factors(adapters, weights: merge.weights, method: .taskArithmetic)
            case "ties": try LoRAMerge.factors(adapters, weights: merge.weights,
                                               method: .ties(density: .fraction(merge.density!), election: election))
            case "magnitude_prune": try LoRAMerge.factors(adapters, weights: merge.weights,
                                                          method: .magnitudePrune(density: .fraction(merge.density!)))
            default: throw UnknownMethod(name: merge.combination_type)
            }
            #expect(result.rank == merge.r)
            #expect(result.scaling == .unit(rank: merge.r))
            #expect(Double(merge.r) == merge.lora_alpha && !merge.use_rslora)
            let a = try fixtures.floats("\(layer).\(mergeName).A")
            let b = try fixtures.floats("\(layer).\(mergeName).B")
            #expect(allClose(result.a, a) && allClose(result.b, b), "\(mergeName) \(layer)")
            #expect(result.a == a && result.b == b, "\(mergeName) \(layer): close, but not bit for bit")
        }
    }

    @Test func truncatedMergeMatchesPEFTsSVDMerge() throws {
        let (file, fixtures) = try Self.load()
        let merge = try #require(file.merges.first { $0.name == "m_svd" })
        for layer in file.layers.keys.sorted() {
            let adapters = try merge.adapters.map { try Self.factors(layer, $0, file: file, fixtures: fixtures) }
            let rank = try #require(merge.svd_rank)
            let t = try LoRAMerge.truncated(adapters, weights: merge.weights, rank: rank, module: layer)
            let m = adapters[0].outFeatures, n = adapters[0].inFeatures
            let pa = Matrix(rows: rank, cols: n, floats: try fixtures.floats("\(layer).m_svd.A"))
            let pb = Matrix(rows: m, cols: rank, floats: try fixtures.floats("\(layer).m_svd.B"))
            // Singular vectors are defined up to sign: compare the products B·A (PEFT works in float32).
            let ours = t.factors.bMatrix.multiplied(by: t.factors.aMatrix)
            #expect(Self.relativeError(ours, pb.multiplied(by: pa)) < 1e-5, "\(layer)")
            #expect(t.factors.scaling == .unit(rank: rank))
        }
    }

    // MARK: - Exact and truncated merges against the dense sum

    static let mixes: [[(out: Int, in: Int, rank: Int, alpha: Double, rs: Bool)]] = [
        [(10, 12, 4, 8, false), (10, 12, 2, 16, false), (10, 12, 3, 6, true)],
        [(1, 9, 2, 2, false), (1, 9, 1, 4, true)],
        [(17, 1, 3, 1, false)],
        [(40, 33, 8, 16, false), (40, 33, 8, 8, false), (40, 33, 16, 32, true), (40, 33, 4, 1, false)],
    ]

    @Test(arguments: mixes.indices)
    func exactMergeIsTheDenseSum(_ index: Int) throws {
        let spec = Self.mixes[index]
        let adapters = spec.enumerated().map { i, s in
            Self.randomAdapter(out: s.out, in: s.in, rank: s.rank, alpha: s.alpha, rsLoRA: s.rs, seed: UInt64(100 * index + i))
        }
        let weights = [1, -0.5, 0.7, 2].prefix(adapters.count).map { $0 }
        let merged = try LoRAMerge.exact(adapters, weights: weights)
        #expect(merged.rank == adapters.reduce(0) { $0 + $1.rank })
        #expect(merged.scaling.scale == 1)
        #expect(Self.relativeError(merged.deltaWeight, Self.denseSum(adapters, weights: weights)) < 1e-6)
    }

    @Test(arguments: mixes.indices)
    func truncationAtFullRankIsExactAndLowerRanksLoseTheirEnergy(_ index: Int) throws {
        let spec = Self.mixes[index]
        let adapters = spec.enumerated().map { i, s in
            Self.randomAdapter(out: s.out, in: s.in, rank: s.rank, alpha: s.alpha, rsLoRA: s.rs, seed: UInt64(200 * index + i))
        }
        let weights = [0.3, 1.2, -0.8, 1].prefix(adapters.count).map { $0 }
        let dense = Self.denseSum(adapters, weights: weights)
        let total = adapters.reduce(0) { $0 + $1.rank }
        let denseSVD = SVD(dense)
        for rank in Set([1, 2, total / 2, total, total + 3]) where rank > 0 {
            let t = try LoRAMerge.truncated(adapters, weights: weights, rank: rank)
            #expect(t.factors.rank == rank)
            // The same spectrum as the dense SVD, from the factors alone.
            for (s, d) in zip(t.singularValues, denseSVD.singularValues) {
                #expect((s - d).magnitude <= 1e-12 * denseSVD.singularValues[0])
            }
            // Reconstruction error equals the discarded energy (up to the factors' Float rounding).
            let approx = t.factors.deltaWeight
            let error = zip(approx.elements, dense.elements).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / dense.squaredNorm
            #expect((error - t.discardedEnergy).magnitude < 1e-6, "rank \(rank): error \(error), discarded \(t.discardedEnergy)")
            if rank >= min(total, dense.rows, dense.cols) { #expect(t.discardedEnergy < 1e-24) }
            let dt = LoRAMerge.truncated(dense, rank: rank)
            #expect((dt.discardedEnergy - t.discardedEnergy).magnitude < 1e-12)
        }
    }

    @Test func largeLayerIsTruncatedThroughItsSmallCore() throws {
        // 2048×1536 with total rank 48: the dense ΔW is never formed. Check at random probes that
        // B·A·x equals Σ wᵢ sᵢ Bᵢ (Aᵢ x) for the exact rank.
        let (m, n) = (2048, 1536)
        let adapters = (0..<3).map { Self.randomAdapter(out: m, in: n, rank: 16, alpha: 32, seed: 900 + UInt64($0)) }
        let weights = [1.0, 0.5, -0.3]
        let t = try LoRAMerge.truncated(adapters, weights: weights, rank: 48)
        #expect(t.discardedEnergy < 1e-20)
        var g = SeededGenerator(seed: 5)
        let x = g.normals(n).map(Double.init)
        func apply(_ f: LoRAFactors, _ x: [Double]) -> [Double] {
            let ax = (0..<f.rank).map { i in (0..<n).reduce(0.0) { $0 + Double(f.a[i * n + $1]) * x[$1] } }
            return (0..<m).map { o in f.scaling.scale * (0..<f.rank).reduce(0.0) { $0 + Double(f.b[o * f.rank + $1]) * ax[$1] } }
        }
        var expected = [Double](repeating: 0, count: m)
        for (f, w) in zip(adapters, weights) {
            for (o, y) in apply(f, x).enumerated() { expected[o] += w * y }
        }
        let actual = apply(t.factors, x)
        let err = zip(actual, expected).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let norm = expected.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(err / norm < 1e-6)
    }

    @Test func factorDAREIsSeededAndDrawsAAndBApart() throws {
        let adapters = (0..<3).map { Self.randomAdapter(out: 8, in: 8, rank: 8, alpha: 8, seed: 40 + UInt64($0)) }
        let method = MergeMethod.dareTies(density: .fraction(0.5), election: .total)
        let one = try LoRAMerge.factors(adapters, weights: [1, 1, 1], method: method, seed: 3, module: "q")
        let again = try LoRAMerge.factors(adapters, weights: [1, 1, 1], method: method, seed: 3, module: "q")
        let other = try LoRAMerge.factors(adapters, weights: [1, 1, 1], method: method, seed: 4, module: "q")
        #expect(one == again)
        #expect(one.a != other.a && one.b != other.b)
        // A and B have the same shape here; their masks still differ.
        let maskA = DropMask.random(count: 64, density: .fraction(0.5), seed: 3, tensor: "q.lora_A", expert: 0)
        let maskB = DropMask.random(count: 64, density: .fraction(0.5), seed: 3, tensor: "q.lora_B", expert: 0)
        #expect(maskA != maskB)
        #expect(one.a.indices.filter { one.a[$0] == 0 } != one.b.indices.filter { one.b[$0] == 0 })
    }

    @Test func factorMergeNeedsOneRank() {
        let a = Self.randomAdapter(out: 4, in: 5, rank: 2, alpha: 2, seed: 1)
        let b = Self.randomAdapter(out: 4, in: 5, rank: 3, alpha: 2, seed: 2)
        #expect(throws: TaskVectorError.self) { try LoRAMerge.factors([a, b], weights: [1, 1], method: .taskArithmetic) }
        let c = Self.randomAdapter(out: 4, in: 6, rank: 2, alpha: 2, seed: 3)
        #expect(throws: TaskVectorError.self) { try LoRAMerge.exact([a, c], weights: [1, 1], module: "q_proj") }
    }

    @Test func rsLoRAScalesByTheRootOfTheRank() {
        #expect(LoRAScaling(rank: 16, alpha: 8, useRSLoRA: true).scale == 2)
        #expect(LoRAScaling(rank: 16, alpha: 8).scale == 0.5)
        #expect(LoRAScaling.unit(rank: 7).scale == 1)
    }
}
