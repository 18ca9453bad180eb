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
}
