import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// Inputs that could be misread are read as what they are, refused, or read with the guess named.
@Suite struct InputInterpretationTests {
    /// A folder holding only the weights of a PEFT fixture, without its adapter_config.json.
    func weightsOnly(_ fixture: String) throws -> String {
        let dir = scratchDirectory("weights-only-\(fixture)")
        try FileManager.default.copyItem(atPath: Fixtures.path(fixture + "/adapter_model.safetensors"),
                                         toPath: dir + "/adapter_model.safetensors")
        return dir
    }

    /// Writes `tensors` (name, shape, values) as an F32 safetensors file.
    func writeF32(_ path: String, _ tensors: [(String, [Int], [Float])]) throws {
        let entries = tensors.map { name, shape, values in
            SafeTensorsWriter.Entry(name: name, dtype: .f32, shape: shape) { sink in
                try values.withUnsafeBytes { try sink($0) }
            }
        }
        let w = try AtomicFileWriter(path: path)
        try SafeTensorsWriter.write(entries, metadata: [:], to: w)
        try w.commit()
    }

    func roles(_ input: TaskVectorInput) -> [String] {
        input.tensors.map { "\($0.name) \($0.role.rawValue) \($0.initRule.rawValue)" }
    }

    @Test(arguments: [("ia3-bert-seqcls", "(IA)³", "1"), ("ia3-gpt2-f16", "(IA)³", "1"),
                      ("lora-bert-seqcls", "LoRA", "0"), ("lora-gpt2-bf16", "LoRA", "0")])
    func adapterWeightsWithoutTheirConfigAreMeasuredFromTheInitTheirNamesImply(fixture: String, method: String, initValue: String) throws {
        let folder = try weightsOnly(fixture)
        let withConfig = try TaskVectorInput.load(path: Fixtures.path(fixture))
        for path in [folder, folder + "/adapter_model.safetensors"] {
            let input = try TaskVectorInput.load(path: path)
            #expect(roles(input) == roles(withConfig), "\(path)")
            let note = try #require(input.notes.first)
            #expect(note.contains("no adapter_config.json") && note.contains(method) && note.contains("measured from \(initValue)"), "\(note)")
        }
        // Kept exactly (prune, density 100), every value comes back as it was: init + τ with the right init.
        let input = try TaskVectorInput.load(path: folder)
        let dir = scratchDirectory("weights-only-roundtrip")
        _ = try AdapterCompressor.compress(input, options: .init(method: .prune, density: .full), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/c.cpeft"), to: dir + "/out.safetensors")
        let original = try SafeTensorsFile(path: folder + "/adapter_model.safetensors")
        let restored = try SafeTensorsFile(path: dir + "/out.safetensors")
        for t in original.tensors {
            let r = try #require(restored.info(t.name))
            #expect(Array(restored.bytes(of: r)) == Array(original.bytes(of: t)), "\(t.name)")
        }
    }

    @Test func namesOfTwoMethodsWithoutAConfigAreRefused() throws {
        let dir = scratchDirectory("mixed-names")
        try writeF32(dir + "/w.safetensors", [("m.q.lora_A.weight", [2, 2], [0.1, 0.2, 0.3, 0.4]), ("m.k.ia3_l", [2], [1.1, 0.9])])
        #expect { try TaskVectorInput.load(path: dir + "/w.safetensors") } throws: { error in
            let e = error as? TaskVectorError
            return e?.code == .unsupported && e?.message.contains("--init zero or --init one") == true
        }
        let forced = try TaskVectorInput.load(path: dir + "/w.safetensors", options: .init(initOverride: .one))
        #expect(forced.tensors.allSatisfy { $0.initRule == .one && $0.role == .residual })
    }

    @Test func anExplicitInitWinsOverTheNamesAndTheReportSaysSo() throws {
        let folder = try weightsOnly("ia3-bert-seqcls")
        let input = try TaskVectorInput.load(path: folder, options: .init(initOverride: .zero))
        #expect(input.tensors.filter { $0.dtype.isFloatingPoint }.allSatisfy { $0.initRule == .zero && $0.role == .residual })
        let note = try #require(input.notes.first)
        #expect(note.contains("(IA)³") && note.contains("--init zero was given"), "\(note)")
    }

    @Test func aModelWithoutItsBaseIsRefusedNamingBothWaysOut() throws {
        // A folder with a config.json naming a model_type, and a lone file whose LayerNorm weights average 1.
        for (path, sign) in [(Fixtures.path("full-ft"), "model_type 'bert'"),
                             (Fixtures.path("full-ft-single/model.safetensors"), "normalisation weight")] {
            #expect(throws: TaskVectorError.self, "\(path)") { try TaskVectorInput.load(path: path) }
            do {
                _ = try TaskVectorInput.load(path: path)
            } catch let e as TaskVectorError {
                #expect(e.code == .unsupported && e.message.contains(sign) && e.message.contains("--base BASE")
                        && e.message.contains("--init zero"), "\(e)")
            }
            // Saying that its tensors are residuals is enough.
            let residual = try TaskVectorInput.load(path: path, options: .init(initOverride: .zero))
            #expect(residual.kind == .residual)
        }
        // A task vector's normalisation residuals average near 0: it is read as the residual it is.
        let dir = scratchDirectory("norm-residual")
        try writeF32(dir + "/tv.safetensors", [("enc.LayerNorm.weight", [8], [0.01, -0.02, 0.005, 0, 0.03, -0.01, 0.002, 0.01]),
                                               ("enc.dense.weight", [2, 2], [0.1, -0.2, 0.3, 0.05])])
        let tv = try TaskVectorInput.load(path: dir + "/tv.safetensors")
        #expect(tv.kind == .residual && tv.tensors.allSatisfy { $0.role == .residual && $0.initRule == .zero })
        #expect(tv.notes.isEmpty)
    }

    /// tiny-bert without its classifier: the base a classification fine-tune grew a head on.
    func baseWithoutHead() throws -> (path: String, removed: [String]) {
        let dir = scratchDirectory("headless-base")
        let base = try SafeTensorsFile(path: Fixtures.path("tiny-bert/model.safetensors"))
        let removed = base.tensors.map(\.name).filter { $0.hasPrefix("classifier.") }
        try #require(!removed.isEmpty)
        let entries = base.tensors.filter { !removed.contains($0.name) }.map { t in
            SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { sink in try sink(base.bytes(of: t)) }
        }
        let w = try AtomicFileWriter(path: dir + "/model.safetensors")
        try SafeTensorsWriter.write(entries, metadata: [:], to: w)
        try w.commit()
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny-bert/config.json"), toPath: dir + "/config.json")
        return (dir, removed.sorted())
    }

    @Test func tensorsNewInTheFineTuneAreStoredExactlyAndRestored() throws {
        let (base, head) = try baseWithoutHead()
        let input = try TaskVectorInput.load(path: Fixtures.path("full-ft"), base: base)
        let added = input.tensors.filter { $0.note?.contains("new in the fine-tune") == true }
        #expect(added.map(\.name).sorted() == head)
        #expect(added.allSatisfy { $0.role == .exact && $0.base == nil })
        #expect(input.notes.contains { $0.contains("\(head.count) tensor(s) new in the fine-tune") })

        let dir = scratchDirectory("head-roundtrip")
        let report = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/ft.cpeft"))
        for name in head {
            let entry = try #require(report.index.tensors.first { $0.name == name })
            #expect(entry.role == .exact && entry.note == "new in the fine-tune (not in the base): stored exactly")
        }
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/ft.cpeft"), to: dir + "/out",
                                               base: Checkpoint(path: base))
        let restored = try Checkpoint(path: dir + "/out")
        let original = try Checkpoint(path: Fixtures.path("full-ft"))
        for name in head {
            let a = try #require(restored.data(name)), b = try #require(original.data(name))
            #expect(Array(a.bytes) == Array(b.bytes), "\(name)")
        }
        // The other way round a tensor is missing from the fine-tune: still an error naming it.
        #expect { try TaskVectorInput.load(path: base, base: Fixtures.path("tiny-bert")) } throws: { error in
            let e = error as? TaskVectorError
            return e?.code == .mismatch && e?.tensor == head[0] && e?.message.contains("not in the fine-tune") == true
        }
    }

    @Test func aCheckpointFolderCarriesItsConfigAndTokenizerFilesVerbatim() throws {
        let dir = scratchDirectory("carry")
        let ft = dir + "/ft"
        try FileManager.default.copyItem(atPath: Fixtures.path("full-ft"), toPath: ft)
        var g = SplitMix64(seed: 17)
        let tokenizer = Array((0..<5000).map { _ in UInt8(truncatingIfNeeded: g.next()) })
        try Data(tokenizer).write(to: URL(fileURLWithPath: ft + "/tokenizer.json"))
        try Data("[PAD]\n[UNK]\nhello\n".utf8).write(to: URL(fileURLWithPath: ft + "/vocab.txt"))
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: ft + "/optimizer.pt"))
        #expect(mkfifo(ft + "/special_tokens_map.json", 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: ft + "/linked.json", withDestinationPath: "/etc/hostname")

        let input = try TaskVectorInput.load(path: ft, base: Fixtures.path("tiny-bert"))
        #expect(input.auxiliaryFiles.map(\.name) == ["model.safetensors.index.json", "config.json", "tokenizer.json", "vocab.txt"])
        #expect(input.notes.contains { $0 == "carried verbatim: config.json, tokenizer.json, vocab.txt" })
        #expect(input.notes.contains { $0.hasPrefix("not carried") && $0.contains("optimizer.pt") && $0.contains("special_tokens_map.json")
                                       && $0.contains("linked.json") })

        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/ft.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/ft.cpeft"), to: dir + "/out",
                                               base: Checkpoint(path: Fixtures.path("tiny-bert")))
        for name in ["config.json", "tokenizer.json", "vocab.txt", "model.safetensors.index.json"] {
            #expect(FileManager.default.contentsEqual(atPath: ft + "/" + name, andPath: dir + "/out/" + name), "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/optimizer.pt"))
    }
}
