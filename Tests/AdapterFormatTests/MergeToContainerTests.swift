@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// A merge to `.cpeft` hands its merged tensors to the compressor without writing the folder output and
/// reading it back, and writes the container `compress` makes of that folder, byte for byte.
@Suite struct MergeToContainerTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var inputs: [String]
        var base: String?
        var weights: [Double]
        var testDescription: String { inputs.joined(separator: " + ") + (base.map { " against \($0)" } ?? "") }
    }

    static let cases = [
        Case(inputs: ["lora-gpt2-bf16", "lora-gpt2-bf16"], weights: [1, 0.5]),
        Case(inputs: ["ia3-bert-seqcls", "ia3-bert-seqcls"], weights: [0.25, 0.5]),
        Case(inputs: ["residual.safetensors", "residual.safetensors"], weights: [1, -0.5]),
        Case(inputs: ["full-ft", "full-ft-single"], base: "tiny-bert", weights: [0.5, 0.5]),
    ]

    func merger(_ c: Case) throws -> AdapterMerger {
        let base = c.base.map(Fixtures.path)
        let sources = try c.inputs.map { try MergeSource.open(path: Fixtures.path($0), base: base) }
        return try AdapterMerger(sources: sources, base: try base.map { try Checkpoint(path: $0) },
                                 options: .init(method: .taskArithmetic, weights: c.weights))
    }

    @Test(arguments: cases)
    func containerOutputIsTheFolderOutputCompressed(_ c: Case) throws {
        let dir = scratchDirectory("merge-container")
        let options = CompressionOptions(density: .percent(10))
        _ = try merger(c).write(to: dir + "/m", as: .folder)
        let folder = try TaskVectorInput.load(path: dir + "/m", base: c.base.map(Fixtures.path))
        let expected = MemoryByteSink()
        _ = try AdapterCompressor.compress(folder, options: options, to: expected, zstdLevel: 3)
        let report = try merger(c).write(to: dir + "/m.cpeft", as: .container(options, zstdLevel: 3))
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/m.cpeft"))) == expected.bytes)
        #expect(report.compression?.outputBytes == expected.bytesWritten)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["m", "m.cpeft"], "no temporary file left")
    }

    /// A merger lets its inputs go while it writes a container, so a second write is an error, not a
    /// stop of the process (a server may retry after a full disk), and leaves nothing behind.
    @Test func aSecondWriteThrows() throws {
        let dir = scratchDirectory("merge-twice")
        let m = try merger(Self.cases[0])
        _ = try m.write(to: dir + "/a.cpeft", as: .container(CompressionOptions(density: .percent(10)), zstdLevel: 3))
        #expect(throws: TaskVectorError.self) {
            _ = try m.write(to: dir + "/b.cpeft", as: .container(CompressionOptions(density: .percent(10)), zstdLevel: 3))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.cpeft"])
    }

    /// A merge larger than the memory limit keeps its tensors in a temporary file, with the same result.
    @Test(arguments: [cases[0], cases[3]])
    func mergedTensorsSpillToATemporaryFileBeyondTheMemoryLimit(_ c: Case) throws {
        let dir = scratchDirectory("merge-spill")
        let options = CompressionOptions(density: .percent(10))
        let inMemory = MemoryByteSink()
        let m1 = try merger(c)
        m1.thresholds = try m1.findThresholds()
        let memory = try MergedTensorStore(near: dir + "/x.cpeft", bytes: m1.outputs.reduce(0) { $0 + $1.byteCount })
        _ = try AdapterCompressor.compress(try m1.mergedInput(store: memory, progress: nil), options: options, to: inMemory, zstdLevel: 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

        let spilled = MemoryByteSink()
        let m2 = try merger(c)
        m2.thresholds = try m2.findThresholds()
        let file = try MergedTensorStore(near: dir + "/x.cpeft", bytes: m2.outputs.reduce(0) { $0 + $1.byteCount }, memoryLimit: 0)
        #expect(file.isFileBacked, "a memory limit of 0 keeps the tensors in a file")
        let temporary = try FileManager.default.contentsOfDirectory(atPath: dir)
        // Unnamed (O_TMPFILE) where the file system allows it, else one hidden name beside the output.
        #expect(temporary.isEmpty || (temporary.count == 1 && temporary[0].hasPrefix(".x.cpeft.merged")), "\(temporary)")
        _ = try AdapterCompressor.compress(try m2.mergedInput(store: file, progress: nil), options: options, to: spilled, zstdLevel: 3)
        file.discard()
        #expect(spilled.bytes == inMemory.bytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "the temporary file is deleted")
    }
}
