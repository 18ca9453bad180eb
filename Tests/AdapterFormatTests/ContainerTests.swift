import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

@Suite struct ContainerTests {
    static let inputs = ["lora-bert-seqcls", "ia3-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16", "residual.safetensors"]

    func compress(_ fixture: String, to path: String, _ options: CompressionOptions = .init(), base: String? = nil,
                  compressAll: Bool = false) throws -> AdapterCompressor.Report {
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture), base: base.map(Fixtures.path),
                                             options: .init(compressAll: compressAll))
        return try AdapterCompressor.compress(input, options: options, to: AtomicFileWriter(path: path, overwrite: true))
    }

    @Test(arguments: inputs)
    func compressDecompressRestoresNamesShapesDtypesAndConfig(fixture: String) throws {
        let dir = scratchDirectory("rt-\(fixture)")
        let container = dir + "/c.cpeft"
        _ = try compress(fixture, to: container, .init(density: .percent(10)))
        let reader = try ContainerReader(path: container)
        let out = dir + "/out"
        _ = try AdapterDecompressor.decompress(reader, to: out)
        let original = try TaskVectorInput.load(path: Fixtures.path(fixture))
        let restoredPath = fixture.hasSuffix(".safetensors") ? out : out + "/adapter_model.safetensors"
        let restored = try SafeTensorsFile(path: restoredPath)
        #expect(Set(restored.tensors.map(\.name)) == Set(original.tensors.map(\.name)))
        for t in original.tensors {
            let r = try #require(restored.info(t.name))
            #expect(r.dtype == t.dtype && r.shape == t.shape, "\(t.name)")
            if t.role == .exact {
                #expect(Array(restored.bytes(of: r)) == Array(t.data.bytes), "exact tensor \(t.name) must come back bit for bit")
            }
        }
        if !fixture.hasSuffix(".safetensors") {
            let config = try Data(contentsOf: URL(fileURLWithPath: out + "/adapter_config.json"))
            let originalConfig = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(fixture + "/adapter_config.json")))
            #expect(config == originalConfig)
        }
        let originalFile = try SafeTensorsFile(path: fixture.hasSuffix(".safetensors") ? Fixtures.path(fixture) : Fixtures.path(fixture + "/adapter_model.safetensors"))
        #expect(restored.metadata == originalFile.metadata)
    }

    @Test(arguments: inputs)
    func sameInputAndOptionsGiveIdenticalBytes(fixture: String) throws {
        let dir = scratchDirectory("det-\(fixture)")
        _ = try compress(fixture, to: dir + "/a.cpeft", .init(density: .percent(5)))
        _ = try compress(fixture, to: dir + "/b.cpeft", .init(density: .percent(5)))
        #expect(FileManager.default.contentsEqual(atPath: dir + "/a.cpeft", andPath: dir + "/b.cpeft"))
    }

    /// Under the paper's rule (one global threshold and scale, LoRA factors as trained) a decompressed
    /// container compresses to itself. The LoRA default is not idempotent by design: the SVD gauge of the
    /// decompressed (ternary) factors is another gauge.
    @Test(arguments: inputs)
    func compressDecompressCompressIsStable(fixture: String) throws {
        let dir = scratchDirectory("stable-\(fixture)")
        _ = try compress(fixture, to: dir + "/1.cpeft", .paper(density: .percent(20)))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/1.cpeft"), to: dir + "/d1")
        let second = fixture.hasSuffix(".safetensors") ? dir + "/d1" : dir + "/d1"
        let input = try TaskVectorInput.load(path: second)
        _ = try AdapterCompressor.compress(input, options: .paper(density: .percent(20)), to: AtomicFileWriter(path: dir + "/2.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/2.cpeft"), to: dir + "/d2")
        let file = fixture.hasSuffix(".safetensors") ? "" : "/adapter_model.safetensors"
        let a = try floatTensors(dir + "/d1" + file)
        let b = try floatTensors(dir + "/d2" + file)
        // The second pass sees values already rounded to each tensor's dtype, so the shared scale may move in the
        // last place of the coarsest dtype present; the kept set and the signs must not move at all.
        let dtypes = Set(a.values.map(\.0))
        let ulp: Float = dtypes.contains(.bf16) ? 0x1p-7 : dtypes.contains(.f16) ? 0x1p-10 : 0x1p-23
        let initOne = fixture.contains("ia3")
        for (name, (_, _, va)) in a {
            let vb = try #require(b[name]?.2)
            #expect(zip(va, vb).allSatisfy { abs($0 - $1) <= 2 * ulp * max(1, abs($0)) }, "\(name)")
            if !initOne { #expect(va.map { $0 == 0 } == vb.map { $0 == 0 }, "\(name)") }
            #expect(va.map { $0 < (initOne ? 1 : 0) } == vb.map { $0 < (initOne ? 1 : 0) }, "\(name)")
        }
    }

    @Test func fullFineTuneRoundTripsAgainstItsBase() throws {
        let dir = scratchDirectory("fullft")
        let report = try compress("full-ft", to: dir + "/ft.cpeft", .init(density: .percent(10)), base: "tiny-bert")
        #expect(report.index.inputKind == "full-fine-tune")
        let reader = try ContainerReader(path: dir + "/ft.cpeft")
        let base = try Checkpoint(path: Fixtures.path("tiny-bert"))
        _ = try AdapterDecompressor.decompress(reader, to: dir + "/out", base: base)
        let restored = try Checkpoint(path: dir + "/out")
        let original = try Checkpoint(path: Fixtures.path("full-ft"))
        #expect(restored.fileNames == original.fileNames)
        #expect(restored.names == original.names)
        // Values = base + ternary residual: where nothing was kept, exactly the base.
        let name = "bert.embeddings.word_embeddings.weight"
        let entry = try #require(reader.tensor(named: name))
        guard case .code(let code) = try reader.payload(entry) else { Issue.record("expected a code"); return }
        var b = [Float](repeating: 0, count: entry.count)
        b.withUnsafeMutableBufferPointer { base.data(name)!.loadFloats(from: 0, into: $0) }
        var r = [Float](repeating: 0, count: entry.count)
        r.withUnsafeMutableBufferPointer { restored.data(name)!.loadFloats(from: 0, into: $0) }
        for i in 0..<entry.count where code.mask[i >> 3] & (1 << UInt8(i & 7)) == 0 {
            #expect(r[i] == b[i])
        }
    }

    @Test func decompressWithDtypeOverrideConvertsFloatsOnly() throws {
        let dir = scratchDirectory("dtype")
        _ = try compress("residual.safetensors", to: dir + "/r.cpeft", .init(density: .percent(10)))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/r.cpeft"), to: dir + "/o.safetensors", dtype: .bf16)
        let f = try SafeTensorsFile(path: dir + "/o.safetensors")
        for t in f.tensors { #expect(t.dtype == (t.name == "step_counter" ? .i64 : .bf16), "\(t.name)") }
    }
}

@Suite struct ThreadingTests {
    @Test(arguments: ["lora-bert-seqcls", "residual.safetensors", "full-ft"])
    func outputBytesDoNotDependOnTheThreadCount(fixture: String) throws {
        let dir = scratchDirectory("threads-\(fixture)")
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture), base: fixture == "full-ft" ? Fixtures.path("tiny-bert") : nil)
        for scope in [CompressionOptions.Scope.global, .tensor] {
            for method in [CompressionOptions.Method.compeft, .stc] {
                let options = CompressionOptions(method: method, scope: scope, density: .percent(10))
                _ = try AdapterCompressor.compress(input, options: options, to: AtomicFileWriter(path: dir + "/1.cpeft", overwrite: true), threads: 1)
                _ = try AdapterCompressor.compress(input, options: options, to: AtomicFileWriter(path: dir + "/3.cpeft", overwrite: true), threads: 3)
                #expect(FileManager.default.contentsEqual(atPath: dir + "/1.cpeft", andPath: dir + "/3.cpeft"), "\(scope) \(method)")
            }
        }
    }

    @Test func multiPieceTensorsGiveTheSameBytesOnAnyThreadCount() throws {
        // 9 × 2²⁰ values: three pieces of the planner's 4 Mi-value work items, with many ties.
        var g = SplitMix64(seed: 9)
        let n = 9 << 20
        var bytes = [UInt8](repeating: 0, count: n * 4)
        bytes.withUnsafeMutableBytes { raw in
            let f = raw.bindMemory(to: Float.self)
            for i in 0..<n { f[i] = Float(Int.random(in: -40...40, using: &g)) / 64 }
        }
        let t = SourceTensor(name: "big", dtype: .f32, shape: [n], fileName: "x.safetensors", role: .residual,
                             initRule: .zero, data: TensorData(dtype: .f32, copying: bytes))
        let input = TaskVectorInput(kind: .residual, tensors: [t], fileMetadata: [:], auxiliaryFiles: [], adapterConfig: nil,
                                    sourceFiles: [], inputBytes: bytes.count)
        let dir = scratchDirectory("pieces")
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/1.cpeft"), zstdLevel: 1, threads: 1)
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/2.cpeft"), zstdLevel: 1, threads: 2)
        #expect(FileManager.default.contentsEqual(atPath: dir + "/1.cpeft", andPath: dir + "/2.cpeft"))
    }

    /// Decompressing to a file fills a sized, mapped output from several workers; the bytes are those
    /// of one worker and of the streamed form (standard output is streamed in order).
    @Test func decompressedBytesDoNotDependOnTheThreadCount() throws {
        let dir = scratchDirectory("decompress-threads")
        let input = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/c.cpeft", overwrite: true))
        let reader = try ContainerReader(path: dir + "/c.cpeft")
        for dtype in [nil, DType.bf16, .f16, .f32] {
            _ = try AdapterDecompressor.decompress(reader, to: dir + "/1.safetensors", dtype: dtype, overwrite: true, threads: 1)
            _ = try AdapterDecompressor.decompress(reader, to: dir + "/3.safetensors", dtype: dtype, overwrite: true, threads: 3)
            #expect(FileManager.default.contentsEqual(atPath: dir + "/1.safetensors", andPath: dir + "/3.safetensors"), "\(String(describing: dtype))")
            // The same tensors streamed through SafeTensorsWriter (the path standard output takes).
            let streamed = try AtomicFileWriter(path: dir + "/s.safetensors", overwrite: true)
            let file = try SafeTensorsFile(path: dir + "/1.safetensors")
            let entries = file.tensors.map { t in
                SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { sink in try sink(file.data(of: t).bytes) }
            }
            try SafeTensorsWriter.write(entries, metadata: file.metadata, to: streamed)
            try streamed.commit()
            #expect(FileManager.default.contentsEqual(atPath: dir + "/1.safetensors", andPath: dir + "/s.safetensors"))
        }
    }

    /// A tensor that fails its checksum while others are being written leaves no output behind.
    @Test func damagedTensorLeavesNoPartialOutput() throws {
        let dir = scratchDirectory("decompress-damaged")
        let input = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/c.cpeft", overwrite: true))
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/c.cpeft")))
        let good = try ContainerReader(path: dir + "/c.cpeft")
        let victim = try #require(good.index.tensors.max { $0.length < $1.length })
        bytes[victim.offset + victim.length / 2] ^= 0x10
        let reader = try ContainerReader(name: "bad.cpeft", contents: bytes)
        for threads in [1, 2] {
            #expect { _ = try AdapterDecompressor.decompress(reader, to: dir + "/out.safetensors", threads: threads) } throws: { error in
                (error as? FormatError)?.tensor == victim.name
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "c.cpeft" }
            #expect(left.isEmpty, "\(left)")
        }
    }

    /// Streaming a mapped input (pages handed back as each pass goes, as for inputs that may not fit in
    /// memory) and keeping it mapped give the same codes; so do both for a full fine-tune and its base.
    @Test func releasingPagesDoesNotChangeTheCodes() throws {
        for (fixture, base) in [("residual.safetensors", nil), ("full-ft", "tiny-bert")] as [(String, String?)] {
            let input = try TaskVectorInput.load(path: Fixtures.path(fixture), base: base.map(Fixtures.path))
            let plan = try Planner.plan(input.tensors, options: .init(density: .percent(10)), kind: input.expertKind)
            for (t, tp) in zip(input.tensors, plan.tensors) where tp.storage == .ternary {
                let streamed = TernaryCode.encode(t, thresholdBits: tp.thresholdBits, keepValues: false,
                                                  chunks: ResidualChunks(releasesPages: true))
                let mapped = TernaryCode.encode(t, thresholdBits: tp.thresholdBits, keepValues: false,
                                                chunks: ResidualChunks(releasesPages: false))
                #expect(streamed == mapped, "\(fixture) \(t.name)")
                // A second pass over released pages reads the same values again.
                let again = TernaryCode.encode(t, thresholdBits: tp.thresholdBits, keepValues: false,
                                               chunks: ResidualChunks(releasesPages: true))
                #expect(again == streamed, "\(fixture) \(t.name)")
            }
        }
    }
}
