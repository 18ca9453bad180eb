@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// What the per-expert rules write into a container: the paper's rule by name is byte for byte what
/// compeft wrote before, the rule is recorded in ancillary fields, and decoding never depends on them.
@Suite struct CompressionRuleContainerTests {
    /// Decodes every floating-point tensor of a container, by name.
    static func decodeAll(_ reader: ContainerReader) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for t in reader.index.tensors where t.dtype.isFloatingPoint {
            var v = [Float](repeating: 0, count: t.count)
            try v.withUnsafeMutableBufferPointer { try reader.decodeValues(t, base: nil, into: $0) }
            out[t.name] = v
        }
        return out
    }

    static func compress(_ fixture: String, _ options: CompressionOptions) throws -> (AdapterCompressor.Report, [UInt8]) {
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture))
        let sink = MemoryByteSink()
        let report = try AdapterCompressor.compress(input, options: options, to: sink)
        return (report, sink.bytes)
    }

    /// `Fixtures/files/containers/*-v1.1.cpeft` were written by compeft's default before the per-expert
    /// defaults existed (the same writer version, `compeft 0.1.0`). Asking for that rule by name —
    /// `--scope global --scale global --lora-gauge trained` — writes the same bytes.
    @Test(arguments: [("containers/lora-bert-seqcls-v1.1.cpeft", "lora-bert-seqcls", 10.0),
                      ("containers/ia3-gpt2-f16-v1.1.cpeft", "ia3-gpt2-f16", 20.0)])
    func papersRuleByNameWritesThePinnedContainersByteForByte(container: String, fixture: String, density: Double) throws {
        let pinned = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(container))))
        let explicit = CompressionOptions(scope: .global, scale: .global, loraGauge: .trained, density: .percent(density))
        #expect(try Self.compress(fixture, explicit).1 == pinned, "\(fixture): --scope global --scale global --lora-gauge trained")
        #expect(try Self.compress(fixture, .paper(density: .percent(density))).1 == pinned, "\(fixture): .paper")
    }

    /// (IA)³ keeps the paper's rule as its default: the default still writes the pinned bytes.
    @Test func ia3DefaultIsUnchanged() throws {
        let pinned = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("containers/ia3-gpt2-f16-v1.1.cpeft"))))
        let (report, bytes) = try Self.compress("ia3-gpt2-f16", .init(density: .percent(20)))
        #expect(bytes == pinned)
        #expect(report.plan.lora == nil && report.index.compression.scaleScope == nil && report.index.compression.loraGauge == nil)
    }

    /// The LoRA default records its rule (scale per module, the gauge chosen by auto) and leaves the
    /// group's scale out; every ternary factor carries its own scale, √c of its module, shared by A and B.
    @Test(arguments: ["lora-bert-seqcls", "lora-gpt2-bf16"])
    func loraDefaultRecordsItsRule(fixture: String) throws {
        let (report, bytes) = try Self.compress(fixture, .init(density: .percent(10)))
        let reader = try ContainerReader(name: "\(fixture).cpeft", contents: bytes)
        let c = reader.index.compression
        let lora = try #require(report.plan.lora)
        #expect(c.scaleScope == "module")
        #expect(c.loraGauge == lora.gauge.rawValue && [.svd, .svdDCT].contains(lora.gauge))
        #expect(c.loraGaugeRequested == "auto")
        #expect(c.scale == nil && c.alpha == nil && c.threshold != nil)
        #expect(c.ruleSummary?.contains("LoRA module") == true && c.ruleSummary?.contains(lora.gauge.rawValue) == true)
        #expect(reader.index == report.index)
        for m in lora.modules where !m.storedExactly {
            let a = try #require(reader.tensor(named: m.a))
            let b = try #require(reader.tensor(named: m.b))
            #expect(a.scaleBits == b.scaleBits, "\(m.name): A and B share √c")
            if let scale = m.scale, scale > 0 { #expect(a.scale == Float(scale.squareRoot()), "\(m.name)") }
        }
        // Explicit choices are recorded as asked: no `requested` when the gauge is named.
        let named = try Self.compress(fixture, .init(loraGauge: .svdDCT, density: .percent(10)))
        let r2 = try ContainerReader(name: "named.cpeft", contents: named.1)
        #expect(r2.index.compression.loraGauge == "svd-dct" && r2.index.compression.loraGaugeRequested == nil)
        // The module scale in the trained gauge records the scale only.
        let trained = try Self.compress(fixture, .init(scale: .module, loraGauge: .trained, density: .percent(10)))
        let r3 = try ContainerReader(name: "trained.cpeft", contents: trained.1)
        #expect(r3.index.compression.scaleScope == "module" && r3.index.compression.loraGauge == nil)
    }

    /// The rule fields are information: a container stripped of them (as a reader that does not know
    /// them sees it) decodes to exactly the same values.
    @Test func decodingDoesNotDependOnTheRuleFields() throws {
        let (_, bytes) = try Self.compress("lora-bert-seqcls", .init(density: .percent(5)))
        let t = bytes.count - ContainerLayout.trailerSize
        let length = Int(bytes.withUnsafeBytes { $0.readLE(UInt32.self, at: t)! })
        let body = try IndexCodec.load(Array(bytes[(t - length)..<t]))
        let head = Array(bytes[0..<(t - length)])
        let decoded = try ContainerIndex.decodeBinary(body, payloadArea: ContainerLayout.preambleSize..<head.count)
        var stripped = decoded.index
        #expect(stripped.compression.scaleScope != nil && stripped.compression.loraGauge != nil)
        stripped.compression.scaleScope = nil
        stripped.compression.loraGauge = nil
        stripped.compression.loraGaugeRequested = nil
        let newBody = stripped.binaryBody(inlineFiles: decoded.inlineFiles)
        #expect(newBody.count < body.count)
        let index = [IndexCodec.none.rawValue] + newBody
        let resealed = head + index + ContainerLayout.Trailer.bytes(preamble: Array(head[0..<12]), index: index)
        let original = try ContainerReader(name: "rule.cpeft", contents: bytes)
        let old = try ContainerReader(name: "stripped.cpeft", contents: resealed)
        #expect(old.index.compression.scaleScope == nil && old.index.compression.loraGauge == nil)
        // Without field 6 the group's scale (0) shows as it is; the tensors keep theirs.
        #expect(old.index.compression.scale == 0)
        #expect(try Self.decodeAll(old) == Self.decodeAll(original))
        #expect(old.index.tensors.map(\.scaleBits) == original.index.tensors.map(\.scaleBits))
    }

    /// A full fine-tune takes a threshold and scale per tensor by default: the same bytes as asking for
    /// `--scope tensor --scale tensor`, and nothing new recorded (the scope says it).
    @Test func fullFineTuneDefaultIsTheTensorScope() throws {
        let input = try TaskVectorInput.load(path: Fixtures.path("full-ft"), base: Fixtures.path("tiny-bert"))
        #expect(input.expertKind == .fullFineTune)
        let a = MemoryByteSink()
        let b = MemoryByteSink()
        let report = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: a)
        _ = try AdapterCompressor.compress(input, options: .init(scope: .tensor, scale: .tensor, density: .percent(10)), to: b)
        #expect(a.bytes == b.bytes)
        #expect(report.index.compression.scope == "tensor" && report.index.compression.scaleScope == nil)
        // The paper's rule stays reachable: one global group.
        let c = MemoryByteSink()
        let paper = try AdapterCompressor.compress(input, options: .paper(density: .percent(10)), to: c)
        #expect(paper.index.compression.scope == "global" && paper.index.compression.scale != nil)
    }
}
