import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// The byte sinks under ``ContainerWriter``: a file, memory and a counter receive the same container.
@Suite struct ByteSinkTests {
    @Test(arguments: ["lora-bert-seqcls", "residual.safetensors"])
    func fileMemoryAndCountingSinksGetTheSameContainer(fixture: String) throws {
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture))
        let options = CompressionOptions(density: .percent(10))
        let path = scratchDirectory("sinks") + "/c.cpeft"
        let file = try AtomicFileWriter(path: path)
        let memory = MemoryByteSink(name: "memory")
        let counter = CountingByteSink()
        let reports = try [file, memory, counter].map { (sink: any ByteSink) in
            try AdapterCompressor.compress(input, options: options, to: sink, zstdLevel: 3)
        }
        let written = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(memory.isCommitted && memory.bytes == written)
        #expect(counter.bytesWritten == UInt64(written.count))
        #expect(reports.map(\.outputBytes) == Array(repeating: UInt64(written.count), count: 3))
        #expect(reports[1].index == reports[0].index && reports[2].index == reports[0].index)
        #expect(try ContainerReader(name: "memory", contents: memory.bytes).index == reports[0].index,
                "the writer reports the index a reader sees")
    }

    @Test func abandonedMemorySinkHoldsNothingAndCommittedOneKeepsItsBytes() throws {
        let sink = MemoryByteSink()
        try sink.write([1, 2, 3])
        sink.abandon()
        #expect(sink.bytes.isEmpty && sink.bytesWritten == 0)
        try sink.write([4])
        try sink.commit()
        sink.abandon()
        #expect(sink.bytes == [4])
    }

    /// `analyze` counts each density's container with a ``CountingByteSink``: the sizes `compress` writes.
    @Test func densityAnalysisCountsTheBytesCompressWrites() throws {
        let input = try TaskVectorInput.load(path: Fixtures.path("ia3-bert-seqcls"))
        let analysis = try DensityAnalysis.run(input, input: "ia3", base: nil, options: .init(), densities: [.percent(5), .percent(30)])
        for d in analysis.densities {
            let sink = MemoryByteSink()
            let report = try AdapterCompressor.compress(input, options: .init(density: d.point.density), to: sink)
            #expect(d.sizes.containerBytes == sink.bytes.count, "density \(d.point.density)")
            #expect(d.sizes.payloadBytes == report.index.tensors.reduce(0) { $0 + $1.length })
            #expect(d.sizes.residualPayloadBytes
                == report.index.tensors.filter { $0.role == .residual }.reduce(0) { $0 + $1.length })
        }
    }
}
