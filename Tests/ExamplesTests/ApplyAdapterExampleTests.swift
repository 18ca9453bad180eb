import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import CompeftTestSupport
import Testing

/// Runs the built `compeft-example-apply`, as a user would, and checks what it wrote.
@Suite struct ApplyAdapterExampleTests {
    static let binary = builtProduct("compeft-example-apply")

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = Tool.run(binary, arguments)
        return (result.status, result.output)
    }

    static func compress(_ fixture: String, base: String? = nil, to path: String) throws {
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture), base: base.map(Fixtures.path))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: path))
    }

    /// The tensors of a safetensors file or sharded folder, by name, as raw bytes.
    static func tensors(_ path: String) throws -> [String: [UInt8]] {
        let checkpoint = try Checkpoint(path: path)
        return Dictionary(uniqueKeysWithValues: checkpoint.names.map { ($0, Array(checkpoint.data($0)!.bytes)) })
    }

    @Test func appliedWeightsEqualDecompressingWithTheBase() throws {
        let dir = scratchDirectory("apply")
        try Self.compress("full-ft", base: "tiny-bert", to: dir + "/ft.cpeft")
        let result = try Self.run([dir + "/ft.cpeft", Fixtures.path("tiny-bert"), "-o", dir + "/tuned.safetensors"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("full-fine-tune, 41 tensors"), "\(result.output)")
        #expect(result.output.contains("bert.encoder.layer.0.attention.self.query.weight [64, 64] F32: +τ changed"), "\(result.output)")
        #expect(result.output.contains("wrote \(dir)/tuned.safetensors"), "\(result.output)")

        let reader = try ContainerReader(path: dir + "/ft.cpeft")
        _ = try AdapterDecompressor.decompress(reader, to: dir + "/restored", base: Checkpoint(path: Fixtures.path("tiny-bert")))
        let applied = try Self.tensors(dir + "/tuned.safetensors")
        let restored = try Self.tensors(dir + "/restored")
        #expect(applied.keys.sorted() == restored.keys.sorted())
        for (name, bytes) in restored { #expect(applied[name] == bytes, "\(name)") }
        // The example changed something: the weights are the fine-tune's approximation, not the base.
        let base = try Self.tensors(Fixtures.path("tiny-bert"))
        #expect(applied.contains { base[$0.key] != $0.value })
    }

    @Test func factorZeroLeavesTheBaseWeightsAsTheyAre() throws {
        let dir = scratchDirectory("zero")
        try Self.compress("full-ft", base: "tiny-bert", to: dir + "/ft.cpeft")
        let result = try Self.run([dir + "/ft.cpeft", Fixtures.path("tiny-bert"), "--factor", "0", "-o", dir + "/same.safetensors"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("0 of 108419 residual values changed"), "\(result.output)")
        #expect(try Self.tensors(dir + "/same.safetensors") == Self.tensors(Fixtures.path("tiny-bert")))
    }

    @Test func anAdapterContainerIsRefusedWithTheReason() throws {
        let dir = scratchDirectory("adapter")
        try Self.compress("ia3-bert-seqcls", to: dir + "/ia3.cpeft")
        let result = try Self.run([dir + "/ia3.cpeft", Fixtures.path("tiny-bert")])
        #expect(result.status == 1)
        #expect(result.output.contains("is an adapter weight (init one), not a delta of base weights"), "\(result.output)")
        #expect(try Self.run([]).status == 2)
    }
}
