import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// Cross-checks compeft against the NumPy reference (Fixtures/reference_compeft.py) on every fixture.
@Suite(.requiresPython("numpy", "safetensors", install: "scripts/bootstrap.sh installs them"))
struct ReferenceParityTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var fixture: String
        var base: String?
        var density: Double
        var scope: String
        var method: String
        var alpha: String
        var testDescription: String { "\(fixture) K=\(density) \(scope) \(method) α=\(alpha)" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for fixture in ["lora-bert-seqcls", "ia3-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16", "residual.safetensors"] {
            for density in [5.0, 10, 20] {
                out.append(Case(fixture: fixture, density: density, scope: "global", method: "compeft", alpha: "auto"))
            }
            out.append(Case(fixture: fixture, density: 10, scope: "tensor", method: "compeft", alpha: "auto"))
            out.append(Case(fixture: fixture, density: 10, scope: "global", method: "compeft", alpha: "1"))
            out.append(Case(fixture: fixture, density: 30, scope: "global", method: "stc", alpha: "auto"))
            out.append(Case(fixture: fixture, density: 30, scope: "global", method: "prune", alpha: "auto"))
        }
        out.append(Case(fixture: "full-ft", base: "tiny-bert", density: 10, scope: "global", method: "compeft", alpha: "auto"))
        return out
    }()

    @Test(arguments: cases)
    func decompressedValuesMatchTheNumpyReference(c: Case) throws {
        let dir = scratchDirectory("parity-\(abs(c.testDescription.hashValue))")
        var args = [repositoryRoot + "/Fixtures/reference_compeft.py", Fixtures.path(c.fixture), "--density", String(c.density),
                    "--scope", c.scope, "--method", c.method, "--alpha", c.alpha, "--out", dir + "/ref.safetensors"]
        if let b = c.base { args += ["--base", Fixtures.path(b)] }
        let py = Python.run(args)
        try #require(py.status == 0, "reference failed: \(py.output)")
        let input = try TaskVectorInput.load(path: Fixtures.path(c.fixture), base: c.base.map(Fixtures.path))
        // The authors' rule by name: one threshold and scale per group, LoRA factors as trained.
        let scope = CompressionOptions.Scope(rawValue: c.scope)!
        let options = CompressionOptions(method: .init(rawValue: c.method)!, scope: scope,
                                         scale: scope == .tensor ? .tensor : .global, loraGauge: .trained,
                                         density: .percent(c.density), alpha: .init(c.alpha)!)
        _ = try AdapterCompressor.compress(input, options: options, to: AtomicFileWriter(path: dir + "/c.cpeft"))
        let base = try c.base.map { try Checkpoint(path: Fixtures.path($0)) }
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/c.cpeft"), to: dir + "/out", base: base)
        let oursPath: String
        if c.fixture.hasSuffix(".safetensors") { oursPath = dir + "/out" }
        else if c.base != nil { oursPath = dir + "/out" }
        else { oursPath = dir + "/out/adapter_model.safetensors" }
        let ours = try Checkpoint(path: oursPath)
        let ref = try floatTensors(dir + "/ref.safetensors")
        var mismatches = 0
        for (name, (dtype, shape, r)) in ref {
            let data = try #require(ours.data(name), "missing \(name)")
            #expect(data.dtype == dtype && ours.entry(name)?.shape == shape)
            var v = [Float](repeating: 0, count: r.count)
            v.withUnsafeMutableBufferPointer { data.loadFloats(from: 0, into: $0) }
            for i in r.indices {
                // Same kept set and sign; values equal, or one ulp apart (σ and norms summed in another order).
                let ok = v[i] == r[i] || abs(v[i] - r[i]) <= max(abs(v[i]), abs(r[i])).ulp
                if !ok {
                    mismatches += 1
                    if mismatches < 5 { Issue.record("\(c.testDescription): \(name)[\(i)] ours \(v[i]) reference \(r[i])") }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test func pythonSafetensorsReadsWhatCompeftWrote() throws {
        let dir = scratchDirectory("pyread")
        let input = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/c.cpeft"), to: dir + "/o.safetensors")
        let py = Python.run([repositoryRoot + "/Fixtures/read_safetensors.py", dir + "/o.safetensors", "--metadata"])
        try #require(py.status == 0, "\(py.output)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(py.output.utf8)) as? [String: Any])
        let ours = try SafeTensorsFile(path: dir + "/o.safetensors")
        for t in ours.tensors {
            let entry = try #require(summary[t.name] as? [String: Any], "python did not list \(t.name)")
            #expect(entry["dtype"] as? String == t.dtype.rawValue, "\(t.name)")
            #expect((entry["shape"] as? [Int]) == t.shape, "\(t.name)")
        }
        #expect((summary["__metadata__"] as? [String: String]) == ours.metadata)
    }

    @Test func writerBytesMatchThePythonPackage() throws {
        let dir = scratchDirectory("bytematch")
        let script = """
            import numpy as np, sys
            from safetensors.numpy import save_file
            save_file({"b.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.bias": np.array([1.5, -2], dtype=np.float16),
                       "c": np.array([7], dtype=np.int64), "d": np.array(3.25, dtype=np.float64)}, sys.argv[1], metadata={"format": "np"})
            """
        let py = Python.run(["-c", script, dir + "/py.safetensors"])
        try #require(py.status == 0, "\(py.output)")
        let f = try SafeTensorsFile(path: dir + "/py.safetensors")
        let w = try AtomicFileWriter(path: dir + "/swift.safetensors")
        try SafeTensorsWriter.write(f.tensors.map { t in
            SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { try $0(f.bytes(of: t)) }
        }, metadata: f.metadata, to: w)
        try w.commit()
        #expect(FileManager.default.contentsEqual(atPath: dir + "/py.safetensors", andPath: dir + "/swift.safetensors"))
    }
}

/// Loads decompressed adapters with the real PEFT library (`PeftModel.from_pretrained`) on their base models.
@Suite(.requiresPython("torch", "peft", "transformers", install: "CI=true bash scripts/bootstrap.sh installs them"))
struct PeftLoadTests {
    @Test(arguments: [("lora-bert-seqcls", "tiny-bert"), ("ia3-bert-seqcls", "tiny-bert"),
                      ("lora-gpt2-bf16", "tiny-gpt2"), ("ia3-gpt2-f16", "tiny-gpt2")])
    func decompressedAdapterLoadsInPeft(adapter: String, base: String) throws {
        let dir = scratchDirectory("peft-\(adapter)")
        let input = try TaskVectorInput.load(path: Fixtures.path(adapter))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/c.cpeft"), to: dir + "/restored")
        let py = Python.run([repositoryRoot + "/Fixtures/check_peft_load.py", dir + "/restored", Fixtures.path(base)])
        #expect(py.status == 0, "\(py.output)")
        #expect(py.output.contains("ok"))
    }

    /// A full fine-tune restored against its base is a model folder `from_pretrained` loads: its
    /// config.json travels in the container.
    @Test func restoredFullFineTuneLoadsWithFromPretrained() throws {
        let dir = scratchDirectory("from-pretrained")
        let input = try TaskVectorInput.load(path: Fixtures.path("full-ft"), base: Fixtures.path("tiny-bert"))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/ft.cpeft"))
        _ = try AdapterDecompressor.decompress(ContainerReader(path: dir + "/ft.cpeft"), to: dir + "/restored",
                                               base: Checkpoint(path: Fixtures.path("tiny-bert")))
        let script = """
            import os, sys, torch
            os.environ["HF_HUB_OFFLINE"] = "1"
            from safetensors.torch import load_file
            from transformers import AutoModelForSequenceClassification
            m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
            sd = m.state_dict()
            files = [f for f in os.listdir(sys.argv[1]) if f.endswith(".safetensors")]
            n = 0
            for f in files:
                for k, v in load_file(os.path.join(sys.argv[1], f)).items():
                    assert torch.equal(sd[k], v), k
                    n += 1
            out = m(torch.tensor([[1, 5, 7, 2]])).logits
            assert torch.isfinite(out).all()
            print("ok", n)
            """
        let py = Python.run(["-c", script, dir + "/restored"])
        #expect(py.status == 0, "\(py.output)")
        let count = try Checkpoint(path: Fixtures.path("full-ft")).names.count
        #expect(py.output.contains("ok \(count)"), "\(py.output)")
    }
}
