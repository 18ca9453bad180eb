@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// docs/FORMAT.md's container layout and index (formats 1.0 and 1.1) checked against the independent
/// reader written from it (`Fixtures/decode_gap.py --index`): every field of every entry, every payload
/// location and checksum, every verbatim file's contents.
@Suite(.enabled(if: GapSpecReader.isAvailable || Python.isCI, "needs python3 and zstd (the zstandard module or the zstd command) for Fixtures/decode_gap.py"))
struct FormatSpecTests {
    /// Compares what the Python reader reads from `path` with compeft's reader.
    func compareWithPython(_ path: String) throws {
        let reader = try ContainerReader(path: path)
        let python = try GapSpecReader.run(["--index", path])
        #expect(python["version"] as? String == "\(reader.majorVersion).\(reader.minorVersion)")
        if reader.minorVersion >= 1, let c = python["compression"] as? [String: Any] {
            #expect(c["scaleScope"] as? String == reader.index.compression.scaleScope, "\(path): scale scope")
            #expect(c["loraGauge"] as? String == reader.index.compression.loraGauge, "\(path): LoRA gauge")
            #expect(c["loraGaugeRequested"] as? String == reader.index.compression.loraGaugeRequested, "\(path)")
        }
        let tensors = try #require(python["tensors"] as? [[String: Any]])
        #expect(tensors.map { $0["name"] as? String } == reader.index.tensors.map(\.name), "\(path)")
        for (p, t) in zip(tensors, reader.index.tensors) {
            #expect(p["file"] as? String == t.file && p["dtype"] as? String == t.dtype.rawValue && p["shape"] as? [Int] == t.shape, "\(t.name)")
            #expect(p["role"] as? String == t.role.rawValue && p["init"] as? String == t.initRule.rawValue, "\(t.name)")
            #expect(p["encoding"] as? Int == t.encoding && p["count"] as? Int == t.count, "\(t.name)")
            #expect(p["kept"] as? Int == t.kept && p["nonzero"] as? Int == t.nonzero, "\(t.name)")
            #expect(p["scaleBits"] as? Int == Int(t.scaleBits) || (p["scaleBits"] == nil && reader.minorVersion == 0), "\(t.name)")
            #expect(p["offset"] as? Int == t.offset && p["length"] as? Int == t.length && p["checksum"] as? String == t.xxh64, "\(t.name)")
        }
        let files = try #require(python["files"] as? [[String: Any]])
        #expect(files.map { $0["name"] as? String } == reader.index.files.map(\.name))
        for (p, f) in zip(files, reader.index.files) {
            #expect(p["rawLength"] as? Int == f.rawLength && p["inline"] as? Bool == (f.inline == true), "\(f.name)")
            #expect(p["xxh64"] as? String == XXH64.hex(XXH64.hash(try reader.contents(of: f))), "\(f.name)")
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: String
        var base: String?
        var options: CompressionOptions
        var testDescription: String { "\(fixture) \(options.scope?.rawValue ?? "default") \(options.method.rawValue) \(options.density) %" }
    }

    @Test(arguments: [
        Case(fixture: "lora-bert-seqcls", options: .init(density: .percent(10))),
        Case(fixture: "lora-bert-seqcls", options: .paper(density: .percent(10))),
        Case(fixture: "lora-gpt2-bf16", options: .init(loraGauge: .svdDCT, density: .percent(20))),
        Case(fixture: "ia3-bert-seqcls", options: .init(scope: .tensor, density: .percent(30))),
        Case(fixture: "lora-gpt2-bf16", options: .init(method: .stc, density: .percent(5))),
        Case(fixture: "ia3-gpt2-f16", options: .init(method: .prune, density: .percent(20))),
        Case(fixture: "residual.safetensors", options: .init(scope: .tensor, density: .percent(2))),
        Case(fixture: "full-ft", base: "tiny-bert", options: .init(density: .percent(10))),
    ])
    func pythonReaderSeesTheSameIndex(_ c: Case) throws {
        let input = try TaskVectorInput.load(path: Fixtures.path(c.fixture), base: c.base.map(Fixtures.path))
        let path = scratchDirectory("formatspec") + "/c.cpeft"
        _ = try AdapterCompressor.compress(input, options: c.options, to: AtomicFileWriter(path: path), zstdLevel: 3)
        try compareWithPython(path)
    }

    @Test(arguments: ["containers/lora-bert-seqcls-v1.0.cpeft", "containers/ia3-gpt2-f16-v1.0.cpeft",
                      "containers/lora-bert-seqcls-v1.1.cpeft", "containers/ia3-gpt2-f16-v1.1.cpeft"])
    func pythonReaderSeesTheSameIndexInPinnedContainers(_ container: String) throws {
        try compareWithPython(Fixtures.path(container))
    }

    /// A verbatim file over ``ContainerWriter/inlineFileLimit`` is a payload of its own, before the tensors.
    @Test func largeVerbatimFilesAreStoredAsPayloads() throws {
        var input = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        var g = SplitMix64(seed: 17)
        let large = (0..<(ContainerWriter.inlineFileLimit + 1)).map { _ in UInt8(97 + g.next() % 26) }
        input.auxiliaryFiles = [("tokenizer.json", large), ("small.json", Array("{}".utf8))]
        let path = scratchDirectory("formatspec-large") + "/c.cpeft"
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: path), zstdLevel: 3)
        let reader = try ContainerReader(path: path)
        let files = reader.index.files
        #expect(files.map(\.inline) == [nil, true])
        #expect(files[0].offset == ContainerLayout.preambleSize && reader.index.tensors.first?.offset == files[0].offset + files[0].length)
        #expect(try reader.contents(of: files[0]) == large)
        try compareWithPython(path)
    }

    /// Dictionary 1 is the same bytes in the Swift source, in `docs/index-dictionary-1.txt` and in the XXH64
    /// that FORMAT.md gives (a changed dictionary would silently break every container of codec 2).
    @Test func dictionaryOneMatchesTheSpec() throws {
        let spec = try String(contentsOfFile: repositoryRoot + "/docs/FORMAT.md", encoding: .utf8)
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/docs/index-dictionary-1.txt")))
        #expect(file == IndexDictionary.one)
        #expect(XXH64.hash(IndexDictionary.one) == IndexDictionary.oneXXH64)
        #expect(spec.contains("XXH64 `\(XXH64.hex(IndexDictionary.oneXXH64))`"), "FORMAT.md must give dictionary 1's XXH64")
        #expect(spec.contains("\(IndexDictionary.one.count) bytes"), "FORMAT.md must give dictionary 1's size")
    }
}
