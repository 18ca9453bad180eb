import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// The LoRA default of `compress` against the fidelity benchmark's numpy prototype (`svd-best` in
/// Benchmarks/Fidelity/rules.py, run by Fixtures/reference_lora_rule.py) on the real PEFT LoRA fixtures.
@Suite(.requiresPython("numpy", "safetensors", install: "scripts/bootstrap.sh installs them"))
struct LoRARuleParityTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var fixture: String
        var density: Double
        /// `nil`: the default (auto).
        var gauge: CompressionOptions.LoRAGauge?
        var testDescription: String { "\(fixture) K=\(density) gauge \(gauge?.rawValue ?? "default")" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for fixture in ["lora-bert-seqcls", "lora-gpt2-bf16"] {
            for density in [1.0, 2, 5, 10, 20, 30, 50] { out.append(Case(fixture: fixture, density: density, gauge: nil)) }
            for gauge in [CompressionOptions.LoRAGauge.svd, .svdDCT] { out.append(Case(fixture: fixture, density: 20, gauge: gauge)) }
        }
        return out
    }()

    @Test(arguments: cases)
    func loraDefaultMatchesTheNumpyPrototype(c: Case) throws {
        let dir = scratchDirectory("lora-parity-\(abs(c.testDescription.hashValue))")
        let py = Python.run([repositoryRoot + "/Fixtures/reference_lora_rule.py", Fixtures.path(c.fixture),
                             "--density", String(c.density), "--gauge", c.gauge?.rawValue ?? "auto",
                             "--out", dir + "/ref.safetensors", "--json", dir + "/ref.json"])
        try #require(py.status == 0, "prototype failed: \(py.output)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ref.json"))) as? [String: Any])
        let input = try TaskVectorInput.load(path: Fixtures.path(c.fixture))
        #expect(input.expertKind == .lora)
        let report = try AdapterCompressor.compress(input, options: .init(loraGauge: c.gauge, density: .percent(c.density)),
                                                    to: AtomicFileWriter(path: dir + "/c.cpeft"))
        let lora = try #require(report.plan.lora)
        #expect(report.plan.rule.scale == .module && report.plan.rule.scope == .global)
        #expect(lora.gauge.rawValue == stats["gauge"] as? String, "\(c.testDescription): gauge")
        // The total product error of each gauge tried, and the threshold it was tried with.
        let errors = try #require(stats["errors"] as? [String: Double])
        let norm2 = try #require(stats["norm2"] as? Double)
        #expect(Set(lora.candidates.map(\.gauge.rawValue)) == Set(errors.keys))
        for candidate in lora.candidates {
            let want = try #require(errors[candidate.gauge.rawValue])
            // Swift measures the binary32-rounded factors it stores, the prototype its binary64 ones.
            #expect(abs(candidate.squaredError - want) <= 1e-6 * norm2, "\(c.testDescription): \(candidate.gauge) error \(candidate.squaredError) vs \(want)")
            #expect(abs(candidate.normSquared - norm2) <= 1e-12 * norm2)
        }
        let thresholds = try #require(stats["threshold"] as? [String: Double])
        #expect(report.plan.global?.threshold == Float(try #require(thresholds[lora.gauge.rawValue])), "\(c.testDescription): threshold")

        // Every factor decodes to the prototype's ternary tensor: same kept positions and signs, same ±s.
        let reader = try ContainerReader(path: dir + "/c.cpeft")
        let ref = try floatTensors(dir + "/ref.safetensors")
        #expect(ref.count == lora.modules.count * 2)
        var mismatches = 0
        for (name, (_, shape, r)) in ref {
            let entry = try #require(reader.tensor(named: name), "missing \(name)")
            #expect(entry.shape == shape && entry.role == .residual)
            var v = [Float](repeating: 0, count: entry.count)
            try v.withUnsafeMutableBufferPointer { try reader.decodeValues(entry, base: nil, into: $0) }
            for i in r.indices where !(v[i] == r[i] || abs(v[i] - r[i]) <= max(abs(v[i]), abs(r[i])).ulp) {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(c.testDescription): \(name)[\(i)] ours \(v[i]) prototype \(r[i])") }
            }
        }
        #expect(mismatches == 0)
    }

    /// An adapter of deliberately awkward modules (every one r = 4, so the prototype's QR applies):
    /// random; at PEFT's init (B = 0, a zero product); rank-deficient (B of rank 1, exactly in binary32,
    /// and A with two equal rows); diagonal (a single non-zero per row and column: exact zeros in every
    /// gauge, ties at 0 at high density, singular values ±1 ulp apart are avoided); and a square one of the
    /// smallest size r = in = out = 4. Written as a PEFT LoRA folder.
    static func awkwardAdapter(_ dir: String, seed: UInt64) throws {
        var g = SplitMix64(seed: seed)
        func uniform(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in scale * Float.random(in: -1...1, using: &g) } }
        let r = 4
        var tensors: [(String, [Int], [Float])] = []
        func module(_ name: String, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float]) {
            tensors.append(("base_model.model.\(name).lora_A.weight", [r, inFeatures], a))
            tensors.append(("base_model.model.\(name).lora_B.weight", [outFeatures, r], b))
        }
        module("m0_random", inFeatures: 16, outFeatures: 12, a: uniform(4 * 16), b: uniform(12 * 4, 0.05))
        module("m1_init", inFeatures: 16, outFeatures: 12, a: uniform(4 * 16), b: [Float](repeating: 0, count: 12 * 4))
        var a2 = uniform(4 * 16)
        for x in 0..<16 { a2[16 + x] = a2[x] }
        let v = uniform(12, 0.05)
        let w: [Float] = [1, -2, 0.5, 0]
        module("m2_rank1", inFeatures: 16, outFeatures: 12, a: a2, b: (0..<(12 * 4)).map { v[$0 / 4] * w[$0 % 4] })
        var a3 = [Float](repeating: 0, count: 4 * 16)
        var b3 = [Float](repeating: 0, count: 12 * 4)
        for i in 0..<4 {
            a3[i * 16 + 3 * i] = [0.9, -0.7, 0.5, 0.3][i]
            b3[(2 * i) * 4 + i] = [0.02, 0.03, -0.05, 0.07][i]
        }
        module("m3_diagonal", inFeatures: 16, outFeatures: 12, a: a3, b: b3)
        module("m4_square", inFeatures: 4, outFeatures: 4, a: uniform(16), b: uniform(16, 0.1))
        let entries = tensors.map { name, shape, values in
            SafeTensorsWriter.Entry(name: name, dtype: .f32, shape: shape) { sink in try values.withUnsafeBytes { try sink($0) } }
        }
        let w8 = try AtomicFileWriter(path: dir + "/adapter_model.safetensors")
        try SafeTensorsWriter.write(entries, metadata: ["format": "pt"], to: w8)
        try w8.commit()
        let config = #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["m0_random", "m1_init", "m2_rank1", "m3_diagonal", "m4_square"], "base_model_name_or_path": "none", "task_type": null}"#
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
    }

    /// The awkward adapter against the prototype: same gauge chosen, same threshold, every factor
    /// decoded to the prototype's ±s (a module at init and the zero-product modules coded empty).
    /// Densities stay where the rank-deficient module's numerically-zero components (whose directions
    /// no two SVDs agree on) cannot reach the threshold.
    @Test(arguments: [(UInt64(1), 1.0), (1, 5), (1, 20), (2, 5), (2, 20), (3, 10)])
    func awkwardModulesMatchTheNumpyPrototype(seed: UInt64, density: Double) throws {
        let dir = scratchDirectory("lora-awkward-\(seed)-\(Int(density))")
        let adapter = dir + "/adapter"
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try Self.awkwardAdapter(adapter, seed: seed)
        let py = Python.run([repositoryRoot + "/Fixtures/reference_lora_rule.py", adapter, "--density", String(density),
                             "--gauge", "auto", "--out", dir + "/ref.safetensors", "--json", dir + "/ref.json"])
        try #require(py.status == 0, "prototype failed: \(py.output)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/ref.json"))) as? [String: Any])
        let input = try TaskVectorInput.load(path: adapter)
        #expect(input.expertKind == .lora)
        let report = try AdapterCompressor.compress(input, options: .init(density: .percent(density)),
                                                    to: AtomicFileWriter(path: dir + "/c.cpeft"))
        let lora = try #require(report.plan.lora)
        #expect(lora.modules.count == 5)
        #expect(lora.gauge.rawValue == stats["gauge"] as? String, "seed \(seed) K \(density): gauge")
        let thresholds = try #require(stats["threshold"] as? [String: Double])
        #expect(report.plan.global?.threshold == Float(try #require(thresholds[lora.gauge.rawValue])), "seed \(seed) K \(density): threshold")
        let atInit = try #require(lora.modules.first { $0.name.hasSuffix("m1_init") })
        #expect(atInit.keepsNothing && atInit.product.normSquared == 0)
        let reader = try ContainerReader(path: dir + "/c.cpeft")
        var mismatches = 0
        for (name, (_, shape, ref)) in try floatTensors(dir + "/ref.safetensors") {
            let entry = try #require(reader.tensor(named: name), "missing \(name)")
            #expect(entry.shape == shape)
            var v = [Float](repeating: 0, count: entry.count)
            try v.withUnsafeMutableBufferPointer { try reader.decodeValues(entry, base: nil, into: $0) }
            for i in ref.indices where !(v[i] == ref[i] || abs(v[i] - ref[i]) <= max(abs(v[i]), abs(ref[i])).ulp) {
                mismatches += 1
                if mismatches < 5 { Issue.record("seed \(seed) K \(density): \(name)[\(i)] ours \(v[i]) prototype \(ref[i])") }
            }
        }
        #expect(mismatches == 0)
    }
}
