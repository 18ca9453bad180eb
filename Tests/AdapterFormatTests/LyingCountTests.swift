@_spi(Fuzzing) import AdapterFormat
import CompeftTestSupport
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// A tiny container whose index claims a gap-coded tensor of 2³⁵ values (a count within the format's
/// limits): `verify` checks the payload without a mask of count/8 bytes (4 GiB here), found by fuzz target 4
/// as a 2.7 KB container that made `verify` allocate for 1.4 × 10¹¹ values.
@Suite struct LyingCountTests {
    static func containerClaiming(count: Int) throws -> (bytes: [UInt8], tensor: String) {
        let input = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        let sink = MemoryByteSink()
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: sink, zstdLevel: 3)
        var parts = try #require(ContainerSealing.unseal(sink.bytes))
        let gap = UInt8(PayloadEncoding.ternaryGap.rawValue)
        let i = try #require(parts.index.tensors.firstIndex { $0.encoding == gap && $0.count > 1 })
        parts.index.tensors[i].count = count
        parts.index.tensors[i].shape = [count]
        return (try #require(ContainerSealing.seal(parts)), parts.index.tensors[i].name)
    }

    static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    @Test func verifyOfAHugeDeclaredCountAllocatesNothingInProportion() throws {
        let (bytes, name) = try Self.containerClaiming(count: 1 << 35)
        #expect(bytes.count < 64 << 10)
        let reader = try ContainerReader(name: "lying.cpeft", contents: bytes)
        let t = try #require(reader.tensor(named: name))
        let before = Self.peakResidentBytes()
        do {
            try reader.verify(t)
            Issue.record("a stream of the real tensor cannot decode to 2^35 values")
        } catch let error as FormatError {
            #expect(error.tensor == name)
            #expect(error.message.contains("payload does not decode"), "\(error)")
        }
        // The old check decoded into a zeroed mask of 2^32 bytes first.
        #expect(Self.peakResidentBytes() - before < 1 << 30, "verify took \(Self.peakResidentBytes() - before) bytes")
    }

    @Test func verifyStillAcceptsEveryTensorOfARealContainer() throws {
        let input = try TaskVectorInput.load(path: Fixtures.path("lora-bert-seqcls"))
        let sink = MemoryByteSink()
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: sink, zstdLevel: 3)
        let reader = try ContainerReader(name: "real.cpeft", contents: sink.bytes)
        let gap = UInt8(PayloadEncoding.ternaryGap.rawValue)
        #expect(reader.index.tensors.contains { $0.encoding == gap })
        for t in reader.index.tensors { try reader.verify(t) }
    }
}
