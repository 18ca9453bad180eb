import AdapterFormat
import Foundation
import TaskVector
import Testing

/// `compeft merge`, run as a user would, checked against the kernels it is built on.
@Suite struct MergeCLITests {
    static let methods = ["task-arithmetic", "ties", "dare-linear", "dare-ties", "magnitude-prune"]

    /// `--method M` with `--density`, `--election`, `--seed` and `--scope` only where M uses them (merge
    /// refuses the others).
    static func methodFlags(_ method: String, density: String, election: String? = nil, seed: String? = nil,
                            scope: String? = nil) -> [String] {
        var flags = ["--method", method]
        if method != "task-arithmetic" { flags += ["--density", density] }
        if let election, ["ties", "dare-ties"].contains(method) { flags += ["--election", election] }
        if let seed, method.hasPrefix("dare") { flags += ["--seed", seed] }
        if let scope, ["ties", "magnitude-prune"].contains(method) { flags += ["--scope", scope] }
        return flags
    }

    static func mergeMethod(_ name: String, density: Density, election: SignElection = .total) -> MergeMethod {
        switch name {
        case "ties": .ties(density: density, election: election)
        case "dare-linear": .dareLinear(density: density)
        case "dare-ties": .dareTies(density: density, election: election)
        case "magnitude-prune": .magnitudePrune(density: density)
        default: .taskArithmetic
        }
    }

    /// A second expert for `fixture`: residuals flipped and shrunk, plus a wiggle; (IA)³ vectors
    /// around 1; heads and non-float tensors unchanged.
    static func secondExpert(of fixture: String, in dir: String) throws -> String {
        let out = dir + "/" + (fixture.hasSuffix(".safetensors") ? "second.safetensors" : "second")
        try writeVariant(of: fixture, to: out) { name, shape, values in
            if name.contains("classifier") { return (shape, values) }
            if name.contains("ia3_") {
                return (shape, perturb(values.map { $0 - 1 }, factor: -0.6, amplitude: 0.02).map { $0 + 1 })
            }
            return (shape, perturb(values, factor: -0.6, amplitude: 0.05))
        }
        return out
    }

    // MARK: - Dense merges against TensorMerge

    @Test(arguments: ["ia3-bert-seqcls", "ia3-gpt2-f16", "residual.safetensors"], methods)
    func mergeMatchesTensorMergeOnTheSameInputs(fixtureName: String, method: String) throws {
        let dir = scratchDirectory("dense")
        let first = fixture(fixtureName)
        let second = try Self.secondExpert(of: first, in: dir)
        let isAdapter = !fixtureName.hasSuffix(".safetensors")
        let output = dir + (isAdapter ? "/out" : "/out.safetensors")
        let r = try CLI.run(["merge", first, second, "-o", output, "--weights", "1,0.5", "--lambda", "0.9"]
                            + Self.methodFlags(method, density: "40", election: "frequency", seed: "5"))
        try #require(r.status == 0, "\(r.stderr)")
        let tensorsPath = { (p: String) in isAdapter ? p + "/adapter_model.safetensors" : p }
        let a = try TensorFile(tensorsPath(first))
        let b = try TensorFile(tensorsPath(second))
        let merged = try TensorFile(tensorsPath(output))
        #expect(merged.names == a.names)
        for name in a.names {
            let info = try a.info(name)
            #expect(try merged.info(name).shape == info.shape && merged.info(name).dtype == info.dtype, "\(name)")
            guard info.dtype.isFloatingPoint, !name.contains("classifier") else {
                #expect(try merged.bytes(name) == a.bytes(name), "\(name) is copied from the first input")
                continue
            }
            let initial: Float = name.contains("ia3_") ? 1 : 0
            let residuals = try [a.floats(name), b.floats(name)].map { $0.map { $0 - initial } }
            let expected = TensorMerge.merge(residuals, weights: [1, 0.5],
                                             method: Self.mergeMethod(method, density: .fraction(0.4), election: .frequency),
                                             lambda: 0.9, seed: 5, tensor: name)
            let difference = firstDifference(try merged.floats(name), rounded(expected.map { $0 + initial }, to: info.dtype))
            #expect(difference == nil, "\(fixtureName) \(method) \(name): \(difference ?? "")")
        }
    }

    @Test func fullFineTunesMergeTheirResidualsOntoTheBase() throws {
        let dir = scratchDirectory("full-ft")
        let base = try TensorFile(fixture("tiny-bert/model.safetensors"))
        let second = dir + "/second.safetensors"
        try writeVariant(of: fixture("full-ft-single/model.safetensors"), to: second) { name, shape, values in
            let b = try! base.floats(name)
            return (shape, zip(perturb(zip(values, b).map { $0 - $1 }, factor: -0.5, amplitude: 0.001), b).map { $0 + $1 })
        }
        let r = try CLI.run(["merge", fixture("full-ft"), second, "--base", fixture("tiny-bert"), "-o", dir + "/out",
                             "--method", "ties", "--density", "30", "--weights", "0.7,0.3"])
        try #require(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted()
        // The first input's shards and index, and its config.json carried verbatim so the folder loads.
        #expect(files == ["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                          "model-00003-of-00003.safetensors", "model.safetensors.index.json"])
        #expect(FileManager.default.contentsEqual(atPath: dir + "/out/config.json", andPath: fixture("full-ft/config.json")))
        let a = try TensorFile(fixture("full-ft-single/model.safetensors"))
        let b = try TensorFile(second)
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/out/model.safetensors.index.json"))) as? [String: Any])
        let weightMap = try #require(index["weight_map"] as? [String: String])
        for name in a.names {
            let baseValues = try base.floats(name)
            let residuals = try [a.floats(name), b.floats(name)].map { zip($0, baseValues).map { $0 - $1 } }
            let expected = TensorMerge.ties(residuals, weights: [0.7, 0.3], density: .fraction(0.3))
            let shard = try TensorFile(dir + "/out/" + #require(weightMap[name]))
            let difference = firstDifference(try shard.floats(name), zip(expected, baseValues).map { $0 + $1 })
            #expect(difference == nil, "\(name): \(difference ?? "")")
        }
        // Without --base, .cpeft full fine-tunes merge to the residual.
        for (input, name) in [(fixture("full-ft"), "a"), (second, "b")] {
            let c = try CLI.run(["compress", input, "--base", fixture("tiny-bert"), "-o", dir + "/\(name).cpeft", "--density", "50"])
            try #require(c.status == 0, "\(c.stderr)")
        }
        let residual = try CLI.run(["merge", dir + "/a.cpeft", dir + "/b.cpeft", "-o", dir + "/residual.safetensors"])
        try #require(residual.status == 0, "\(residual.stderr)")
        let withBase = try CLI.run(["merge", dir + "/a.cpeft", dir + "/b.cpeft", "--base", fixture("tiny-bert"), "-o", dir + "/weights.safetensors"])
        try #require(withBase.status == 0, "\(withBase.stderr)")
        let rf = try TensorFile(dir + "/residual.safetensors")
        let wf = try TensorFile(dir + "/weights.safetensors")
        let name = "bert.encoder.layer.0.attention.self.query.weight"
        let sum = zip(try rf.floats(name), try base.floats(name)).map { $0 + $1 }
        #expect(firstDifference(try wf.floats(name), sum) == nil)
    }

    // MARK: - LoRA

    /// lora-bert-seqcls's factors and scale for one module, from the written files.
    static func loraModules(_ folder: String) throws -> (config: [String: Any], file: TensorFile, modules: [String]) {
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/adapter_config.json"))) as? [String: Any])
        let file = try TensorFile(folder + "/adapter_model.safetensors")
        let modules = file.names.filter { $0.hasSuffix(".lora_A.weight") }.map { String($0.dropLast(".lora_A.weight".count)) }
        return (config, file, modules)
    }

    /// `scale · B · A` of `module` in a PEFT folder, the scale from its config (rank and alpha patterns
    /// included, written as escaped module keys).
    static func deltaWeight(_ folder: String, module: String) throws -> Matrix {
        let (config, file, _) = try loraModules(folder)
        let aInfo = try file.info(module + ".lora_A.weight")
        let bInfo = try file.info(module + ".lora_B.weight")
        let key = String(module.dropFirst("base_model.model.".count))
        func pattern(_ field: String) -> Double? {
            let p = config[field] as? [String: Any] ?? [:]
            return p.first { $0.key.replacingOccurrences(of: "\\", with: "") == key }.map { ($0.value as! NSNumber).doubleValue }
        }
        let r = pattern("rank_pattern") ?? (config["r"] as! NSNumber).doubleValue
        let alpha = pattern("alpha_pattern") ?? (config["lora_alpha"] as! NSNumber).doubleValue
        #expect(Int(r) == aInfo.shape[0], "\(folder) \(module): config rank \(r), tensors rank \(aInfo.shape[0])")
        let factors = LoRAFactors(a: try file.floats(aInfo.name), b: try file.floats(bInfo.name), inFeatures: aInfo.shape[1],
                                  outFeatures: bInfo.shape[0],
                                  scaling: LoRAScaling(rank: Int(r), alpha: alpha, useRSLoRA: config["use_rslora"] as? Bool ?? false))
        return factors.deltaWeight
    }

    static func relativeError(_ a: Matrix, _ b: Matrix) -> Double {
        let diff = zip(a.elements, b.elements).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        return (diff / max(b.squaredNorm, .leastNormalMagnitude)).squareRoot()
    }

    /// A second LoRA adapter: perturbed factors, layer 0's query at rank 4 with its own alpha, and
    /// one more target module.
    static func secondLoRA(in dir: String) throws -> String {
        let out = dir + "/second-lora"
        let short = "base_model.model.bert.encoder.layer.0.attention.self.query"
        try writeVariant(of: fixture("lora-bert-seqcls"), to: out, config: { c in
            c["rank_pattern"] = ["bert.encoder.layer.0.attention.self.query": 4]
            c["alpha_pattern"] = ["bert.encoder.layer.0.attention.self.query": 12]
            c["target_modules"] = #"(.*\.)?(query|value)"#  // the same targets, as PEFT's full-match regex
        }) { name, shape, values in
            guard name.hasPrefix(short) else { return (shape, perturb(values, factor: -0.8, amplitude: 0.03)) }
            if name.hasSuffix("lora_A.weight") { return ([4, shape[1]], Array(values.prefix(4 * shape[1]))) }
            if name.hasSuffix("lora_B.weight") {
                return ([shape[0], 4], (0..<shape[0]).flatMap { row in values[(row * 8)..<(row * 8 + 4)] })
            }
            return (shape, values)
        }
        return out
    }

    @Test func loraExactMergeEqualsTheDenseUpdateSum() throws {
        let dir = scratchDirectory("lora-exact")
        let first = fixture("lora-bert-seqcls")
        let second = try Self.secondLoRA(in: dir)
        let weights = [1.0, -0.5]
        let r = try CLI.run(["merge", first, second, "-o", dir + "/cat", "--weights", "1,-0.5", "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let (config, _, modules) = try Self.loraModules(dir + "/cat")
        #expect(config["r"] as? Int == 16 && config["lora_alpha"] as? Int == 16 && config["use_rslora"] as? Bool == false)
        #expect((config["rank_pattern"] as? [String: Any])?.count == 1)
        // The union of a list and a regex is a regex that PEFT full-matches against module names.
        let targets = try NSRegularExpression(pattern: "^(?:" + #require(config["target_modules"] as? String) + ")$")
        func targeted(_ name: String) -> Bool { targets.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil }
        #expect(targeted("bert.encoder.layer.1.attention.self.value") && targeted("query"))
        #expect(!targeted("bert.encoder.layer.1.attention.self.key"))
        #expect(modules.count == 4)
        for module in modules {
            var expected = Matrix(zeros: 64, 64)
            for (input, w) in zip([first, second], weights) {
                let d = try Self.deltaWeight(input, module: module)
                for i in expected.elements.indices { expected.elements[i] += w * d.elements[i] }
            }
            let error = Self.relativeError(try Self.deltaWeight(dir + "/cat", module: module), expected)
            #expect(error < 1e-6, "\(module): relative error \(error)")
        }
        // --rank R: the truncated SVD, whose error is the discarded energy it reports.
        let svd = try CLI.run(["merge", first, second, "-o", dir + "/svd", "--weights", "1,-0.5", "--rank", "5", "--json"])
        try #require(svd.status == 0, "\(svd.stderr)")
        let reported = try #require(try svd.report()["lora_modules"] as? [[String: Any]])
        for entry in reported {
            let module = try #require(entry["module"] as? String)
            #expect(entry["how"] as? String == "exact-svd" && entry["rank"] as? Int == 5)
            var expected = Matrix(zeros: 64, 64)
            for (input, w) in zip([first, second], weights) {
                let d = try Self.deltaWeight(input, module: module)
                for i in expected.elements.indices { expected.elements[i] += w * d.elements[i] }
            }
            let error = Self.relativeError(try Self.deltaWeight(dir + "/svd", module: module), expected)
            let energy = try #require(entry["discarded_energy"] as? Double)
            #expect(abs(error * error - energy) < 1e-5, "\(module): ‖ΔW − BA‖²/‖ΔW‖² = \(error * error), reported \(energy)")
        }
    }

    @Test func loraTiesMergesTheDenseUpdatesThenFactors() throws {
        let dir = scratchDirectory("lora-ties")
        let first = fixture("lora-bert-seqcls")
        let second = try Self.secondLoRA(in: dir)
        let r = try CLI.run(["merge", first, second, "-o", dir + "/ties", "--method", "ties", "--density", "30", "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let reported = try #require(try r.report()["lora_modules"] as? [[String: Any]])
        #expect(reported.count == 4)
        for entry in reported {
            let module = try #require(entry["module"] as? String)
            #expect(entry["how"] as? String == "dense-svd" && entry["rank"] as? Int == 8)
            let deltas = try [first, second].map { try Self.deltaWeight($0, module: module).floats }
            let merged = Matrix(rows: 64, cols: 64, floats: TensorMerge.ties(deltas, weights: [1, 1], density: .fraction(0.3)))
            let error = Self.relativeError(try Self.deltaWeight(dir + "/ties", module: module), merged)
            let energy = try #require(entry["discarded_energy"] as? Double)
            #expect(energy > 0 && abs(error * error - energy) < 1e-5, "\(module): \(error * error) vs \(energy)")
        }
    }

    @Test func loraFactorsModeIsPEFTsPerFactorCombination() throws {
        let dir = scratchDirectory("lora-factors")
        let fixturePath = fixture("lora-bert-seqcls")
        let r = try CLI.run(["merge", fixturePath, fixturePath, "-o", dir + "/f", "--lora", "factors", "--method", "ties",
                             "--density", "50", "--weights", "1,0.5"])
        try #require(r.status == 0, "\(r.stderr)")
        let (config, merged, modules) = try Self.loraModules(dir + "/f")
        #expect(config["r"] as? Int == 8 && config["lora_alpha"] as? Int == 8)
        let input = try TensorFile(fixturePath + "/adapter_model.safetensors")
        for module in modules {
            let f = LoRAFactors(a: try input.floats(module + ".lora_A.weight"), b: try input.floats(module + ".lora_B.weight"),
                                inFeatures: 64, outFeatures: 64, scaling: LoRAScaling(rank: 8, alpha: 16))
            let expected = try LoRAMerge.factors([f, f], weights: [1, 0.5], method: .ties(density: .fraction(0.5), election: .total),
                                                 module: module)
            #expect(try merged.floats(module + ".lora_A.weight") == expected.a, "\(module)")
            #expect(try merged.floats(module + ".lora_B.weight") == expected.b, "\(module)")
        }
        let mixed = try CLI.run(["merge", fixturePath, try Self.secondLoRA(in: dir), "-o", dir + "/g", "--lora", "factors"])
        #expect(mixed.status == 3 && mixed.stderr.contains("rank"), "\(mixed.stderr)")
    }

    /// Containers whose LoRA factors are in the SVD gauge (compress's LoRA default) reproduce products, not
    /// trained factors: a factor-wise merge of them says so; in the trained gauge it does not.
    @Test func loraFactorsMergeOfRegaugedContainersWarns() throws {
        let dir = scratchDirectory("lora-factors-gauge")
        let fixturePath = fixture("lora-bert-seqcls")
        try #require(try CLI.run(["compress", fixturePath, "-o", dir + "/svd.cpeft", "--density", "20"]).status == 0)
        try #require(try CLI.run(["compress", fixturePath, "-o", dir + "/trained.cpeft", "--density", "20", "--lora-gauge", "trained",
                                  "--scale", "global"]).status == 0)
        let regauged = try CLI.run(["merge", dir + "/svd.cpeft", dir + "/trained.cpeft", "-o", dir + "/m1", "--lora", "factors", "--json"])
        #expect(regauged.status == 0, "\(regauged.stderr)")
        #expect(regauged.stderr.contains("warning: --lora factors combines A and B factor by factor, but '\(dir)/svd.cpeft' stores its factors in the svd"),
                "\(regauged.stderr)")
        #expect(!regauged.stderr.contains("trained.cpeft' stores"), "\(regauged.stderr)")
        let trained = try CLI.run(["merge", dir + "/trained.cpeft", dir + "/trained.cpeft", "-o", dir + "/m2", "--lora", "factors"])
        #expect(trained.status == 0 && !trained.stderr.contains("gauge"), "\(trained.stderr)")
        let exact = try CLI.run(["merge", dir + "/svd.cpeft", dir + "/trained.cpeft", "-o", dir + "/m3"])
        #expect(exact.status == 0 && !exact.stderr.contains("gauge"), "--lora exact merges products: \(exact.stderr)")
    }

    // MARK: - Merged PEFT folders

    @Test func mergedAdapterFolderIsAValidPEFTFolder() throws {
        let dir = scratchDirectory("valid")
        let r = try CLI.run(["merge", fixture("lora-bert-seqcls"), try Self.secondLoRA(in: dir), "-o", dir + "/m"])
        try #require(r.status == 0, "\(r.stderr)")
        let (config, file, modules) = try Self.loraModules(dir + "/m")
        #expect(config["peft_type"] as? String == "LORA")
        let original = try TensorFile(fixture("lora-bert-seqcls/adapter_model.safetensors"))
        #expect(file.names == original.names)
        #expect(file.file.metadata == original.file.metadata)
        for module in modules {
            let a = try file.info(module + ".lora_A.weight")
            let b = try file.info(module + ".lora_B.weight")
            #expect(a.shape[0] == b.shape[1])
            _ = try Self.deltaWeight(dir + "/m", module: module)  // checks r (or rank_pattern) against the tensors
        }
        let input = try TaskVectorInput.load(path: dir + "/m")
        #expect(input.kind == .peftAdapter && input.adapterConfig?.peftType == "LORA")
    }

    @Test(.requiresPython("torch", "peft", "transformers", install: "CI=true bash scripts/bootstrap.sh installs them"),
          arguments: [
            (["lora-bert-seqcls", "second-lora"], [String](), "tiny-bert"),
            (["lora-bert-seqcls", "second-lora"], ["--method", "ties", "--rank", "6"], "tiny-bert"),
            (["lora-gpt2-bf16", "lora-gpt2-bf16"], ["--lora", "factors", "--method", "dare-ties", "--density", "50"], "tiny-gpt2"),
            (["ia3-bert-seqcls", "ia3-bert-seqcls"], ["--method", "ties", "--weights", "0.5,0.5"], "tiny-bert"),
          ])
    func mergedAdapterLoadsInPEFT(inputs: [String], flags: [String], base: String) throws {
        let dir = scratchDirectory("peft")
        let paths = try inputs.map { $0 == "second-lora" ? try Self.secondLoRA(in: dir) : fixture($0) }
        let r = try CLI.run(["merge"] + paths + ["-o", dir + "/m"] + flags)
        try #require(r.status == 0, "\(r.stderr)")
        let py = Python.run([repositoryRoot + "/Fixtures/check_peft_load.py", dir + "/m", fixture(base)])
        #expect(py.status == 0 && py.output.hasPrefix("ok"), "\(py.output)")
    }

    // MARK: - Compressed experts

    @Test(arguments: [("task-arithmetic", "tensor"), ("ties", "tensor"), ("magnitude-prune", "tensor"),
                      ("ties", "global"), ("magnitude-prune", "global"), ("dare-ties", "tensor")])
    func ternaryPathEqualsTheDensePathOnExpandedInputs(method: String, scope: String) throws {
        let dir = scratchDirectory("ternary")
        let second = try Self.secondExpert(of: fixture("residual.safetensors"), in: dir)
        var containers: [String] = []
        for (i, input) in [fixture("residual.safetensors"), second].enumerated() {
            let c = try CLI.run(["compress", input, "-o", dir + "/\(i).cpeft", "--density", "10", "--scope", "tensor"])
            try #require(c.status == 0, "\(c.stderr)")
            let d = try CLI.run(["decompress", dir + "/\(i).cpeft", "-o", dir + "/\(i).f32.safetensors", "--dtype", "f32"])
            try #require(d.status == 0, "\(d.stderr)")
            containers.append(dir + "/\(i).cpeft")
        }
        let flags = Self.methodFlags(method, density: "30", scope: scope) + ["--weights", "1,-0.75", "--json"]
        let direct = try CLI.run(["merge"] + containers + ["-o", dir + "/direct.safetensors"] + flags)
        let expanded = try CLI.run(["merge"] + containers + ["-o", dir + "/expanded.safetensors", "--expand"] + flags)
        let fromFloats = try CLI.run(["merge", dir + "/0.f32.safetensors", dir + "/1.f32.safetensors", "-o", dir + "/floats.safetensors"] + flags)
        for run in [direct, expanded, fromFloats] { try #require(run.status == 0, "\(run.stderr)") }
        let ternaryCount = try #require((try direct.report()["paths"] as? [String: Int])?["ternary"])
        if method == "dare-ties" { #expect(ternaryCount == 0) } else { #expect(ternaryCount >= 2, "\(direct.out)") }
        #expect((try expanded.report()["paths"] as? [String: Int])?["ternary"] == 0)
        let d = try TensorFile(dir + "/direct.safetensors")
        let e = try TensorFile(dir + "/expanded.safetensors")
        let f = try TensorFile(dir + "/floats.safetensors")
        for name in d.names where try d.info(name).dtype.isFloatingPoint {
            let values = try d.floats(name)
            #expect(firstDifference(values, try e.floats(name)) == nil, "\(method)/\(scope) \(name) vs --expand")
            let difference = firstDifference(values, rounded(try f.floats(name), to: try d.info(name).dtype))
            #expect(difference == nil, "\(method)/\(scope) \(name) vs decompressed inputs: \(difference ?? "")")
        }
    }

    @Test func ia3ContainersMergeOnTheirCodesAroundOne() throws {
        let dir = scratchDirectory("ia3-ternary")
        let second = try Self.secondExpert(of: fixture("ia3-bert-seqcls"), in: dir)
        for (i, input) in [fixture("ia3-bert-seqcls"), second].enumerated() {
            #expect(try CLI.run(["compress", input, "-o", dir + "/\(i).cpeft", "--density", "20"]).status == 0)
        }
        let direct = try CLI.run(["merge", dir + "/0.cpeft", dir + "/1.cpeft", "-o", dir + "/d", "--method", "ties", "--density", "100", "--json"])
        let expanded = try CLI.run(["merge", dir + "/0.cpeft", dir + "/1.cpeft", "-o", dir + "/e", "--method", "ties", "--density", "100", "--expand"])
        try #require(direct.status == 0 && expanded.status == 0, "\(direct.stderr) \(expanded.stderr)")
        #expect((try direct.report()["paths"] as? [String: Int])?["ternary"] == 8)
        let d = try TensorFile(dir + "/d/adapter_model.safetensors")
        let e = try TensorFile(dir + "/e/adapter_model.safetensors")
        for name in d.names { #expect(firstDifference(try d.floats(name), try e.floats(name)) == nil, "\(name)") }
        #expect(try d.floats("base_model.model.bert.encoder.layer.0.output.dense.ia3_l").contains { $0 != 1 }, "vectors around 1")
    }

    // MARK: - Errors, config, determinism, outputs

    @Test func mismatchedTensorSetsNameTheTensorAndBothFiles() throws {
        let dir = scratchDirectory("mismatch")
        let residual = fixture("residual.safetensors")
        try writeVariant(of: residual, to: dir + "/missing.safetensors") { name, shape, values in
            name == "layers.2.w" ? nil : (shape, values)
        }
        try writeVariant(of: residual, to: dir + "/reshaped.safetensors") { name, shape, values in
            name == "B.proj" ? ([30, 40], values) : (shape, values)
        }
        #expect(try CLI.run(["compress", dir + "/missing.safetensors", "-o", dir + "/missing.cpeft"]).status == 0)
        let cases: [([String], String)] = [
            ([residual, dir + "/missing.safetensors"], "tensor 'layers.2.w': is in '\(residual)' but not in '\(dir)/missing.safetensors'"),
            ([dir + "/missing.cpeft", residual], "tensor 'layers.2.w': is in '\(residual)' but not in '\(dir)/missing.cpeft'"),
            ([residual, dir + "/reshaped.safetensors"], "tensor 'B.proj': has shape [40, 30] in '\(residual)' but [30, 40] in '\(dir)/reshaped.safetensors'"),
            ([fixture("lora-bert-seqcls"), fixture("ia3-bert-seqcls")], "merge inputs of one kind"),
        ]
        for (inputs, message) in cases {
            let r = try CLI.run(["merge"] + inputs + ["-o", dir + "/out.safetensors"])
            #expect(r.status == 3, "\(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.safetensors"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
    }

    @Test func configFileEqualsFlagsAndFlagsOverrideIt() throws {
        let dir = scratchDirectory("config")
        try FileManager.default.createDirectory(atPath: dir + "/sets", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture("residual.safetensors"), toPath: dir + "/sets/a.safetensors")
        _ = try Self.secondExpert(of: fixture("residual.safetensors"), in: dir + "/sets")
        let config = """
            {"inputs": ["a.safetensors", "second.safetensors"], "output": "from-config.safetensors",
             "method": "dare-ties", "density": 30, "weights": [1, 0.5], "lambda": 0.8, "seed": 9, "election": "frequency"}
            """
        try config.write(toFile: dir + "/sets/merge.json", atomically: true, encoding: .utf8)
        let viaConfig = try CLI.run(["merge", "--config", dir + "/sets/merge.json"])
        try #require(viaConfig.status == 0, "\(viaConfig.stderr)")
        let viaFlags = try CLI.run(["merge", dir + "/sets/a.safetensors", dir + "/sets/second.safetensors", "-o", dir + "/from-flags.safetensors",
                                    "--method", "dare-ties", "--density", "30", "--weights", "1,0.5", "--lambda", "0.8",
                                    "--seed", "9", "--election", "frequency"])
        try #require(viaFlags.status == 0, "\(viaFlags.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: dir + "/sets/from-config.safetensors", andPath: dir + "/from-flags.safetensors"))
        let overridden = try CLI.run(["merge", "--config", dir + "/sets/merge.json", "--seed", "3", "-o", dir + "/o1.safetensors"])
        let plain = try CLI.run(["merge", dir + "/sets/a.safetensors", dir + "/sets/second.safetensors", "-o", dir + "/o2.safetensors",
                                 "--method", "dare-ties", "--density", "30", "--weights", "1,0.5", "--lambda", "0.8", "--seed", "3",
                                 "--election", "frequency"])
        try #require(overridden.status == 0 && plain.status == 0, "\(overridden.stderr) \(plain.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: dir + "/o1.safetensors", andPath: dir + "/o2.safetensors"))
        try #"{"inputs": ["a.safetensors"], "densty": 30}"#.write(toFile: dir + "/sets/typo.json", atomically: true, encoding: .utf8)
        let typo = try CLI.run(["merge", "--config", dir + "/sets/typo.json", "-o", dir + "/x.safetensors"])
        #expect(typo.status == 2 && typo.stderr.contains("'densty'"), "\(typo.stderr)")
        let missing = try CLI.run(["merge", "--config", dir + "/nope.json", "-o", dir + "/x.safetensors"])
        #expect(missing.status == 4, "\(missing.stderr)")
    }

    @Test(arguments: ["residual.safetensors", "lora-bert-seqcls"])
    func dareIsReproducibleFromItsSeed(fixtureName: String) throws {
        let dir = scratchDirectory("seed")
        let first = fixture(fixtureName)
        let second = try Self.secondExpert(of: first, in: dir)
        func run(_ seed: Int, _ name: String) throws -> Data {
            let out = dir + "/" + name + ".safetensors"
            let r = try CLI.run(["merge", first, second, "-o", out, "--method", "dare-ties", "--density", "50", "--seed", "\(seed)"])
            try #require(r.status == 0, "\(r.stderr)")
            return try Data(contentsOf: URL(fileURLWithPath: out))
        }
        let a = try run(42, "a")
        let b = try run(42, "b")
        let c = try run(43, "c")
        #expect(a == b)
        #expect(a != c)
    }

    @Test func cpeftOutputIsTheFolderOutputCompressed() throws {
        let dir = scratchDirectory("cpeft-out")
        let second = try Self.secondLoRA(in: dir)
        let flags = ["--method", "ties", "--density", "40"]
        #expect(try CLI.run(["merge", fixture("lora-bert-seqcls"), second, "-o", dir + "/m"] + flags).status == 0)
        #expect(try CLI.run(["compress", dir + "/m", "-o", dir + "/a.cpeft", "--density", "10", "--alpha", "2"]).status == 0)
        let r = try CLI.run(["merge", fixture("lora-bert-seqcls"), second, "-o", dir + "/b.cpeft", "--out-density", "10",
                             "--out-alpha", "2", "--json"] + flags)
        try #require(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: dir + "/a.cpeft", andPath: dir + "/b.cpeft"))
        #expect((try r.report()["compression"] as? [String: Any])?["density"] as? Double == 10)
        #expect(try CLI.run(["verify", dir + "/b.cpeft"]).status == 0)
        // Full fine-tunes with a base: the container holds the residual against it.
        let ft = ["merge", fixture("full-ft"), fixture("full-ft-single"), "--base", fixture("tiny-bert"), "--weights", "0.5,0.5"]
        #expect(try CLI.run(ft + ["-o", dir + "/ft"]).status == 0)
        #expect(try CLI.run(["compress", dir + "/ft", "--base", fixture("tiny-bert"), "-o", dir + "/c.cpeft"]).status == 0)
        #expect(try CLI.run(ft + ["-o", dir + "/d.cpeft"]).status == 0)
        #expect(FileManager.default.contentsEqual(atPath: dir + "/c.cpeft", andPath: dir + "/d.cpeft"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
    }

    @Test func usageAndIOErrorsHaveTheDocumentedExitCodes() throws {
        let dir = scratchDirectory("errors")
        let lora = fixture("lora-bert-seqcls")
        let cases: [([String], Int32, String)] = [
            (["merge", lora, "-o", dir + "/x", "--method", "magic"], 2, "--method"),
            (["merge", lora, "-o", dir + "/x", "--density", "0"], 2, "--density"),
            (["merge", lora, lora, "-o", dir + "/x", "--weights", "1,2,3"], 2, "3 weight(s) for 2 input(s)"),
            (["merge", lora, "-o", dir + "/x", "--out-density", "5"], 2, ".cpeft"),
            (["merge", lora, "-o", dir + "/x", "--lora", "factors", "--rank", "4"], 2, "--rank"),
            (["merge", lora, "-o", dir + "/x", "--base", fixture("tiny-bert")], 2, "--base"),
            (["merge", lora], 2, "-o"),
            (["merge", dir + "/missing", "-o", dir + "/x"], 4, "no such file"),
            (["merge", lora, "-o", lora, "--force"], 4, "input"),
        ]
        for (args, status, mention) in cases {
            let r = try CLI.run(args)
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(mention), "\(args): \(r.stderr)")
        }
        #expect(try CLI.run(["merge", lora, "-o", dir + "/x"]).status == 0)
        let again = try CLI.run(["merge", lora, "-o", dir + "/x"])
        #expect(again.status == 4 && again.stderr.contains("--force"))
        #expect(try CLI.run(["merge", lora, "-o", dir + "/x", "--force"]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["x"])
    }

    @Test func jsonReportHasTheDocumentedKeys() throws {
        let dir = scratchDirectory("json")
        let r = try CLI.run(["merge", fixture("lora-bert-seqcls"), fixture("lora-bert-seqcls"), "-o", dir + "/m.cpeft",
                             "--method", "ties", "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let o = try r.report()
        for key in ["inputs", "output", "destination", "method", "density", "election", "weights", "lambda", "seed", "scope",
                    "files", "bytes_written", "paths", "tensors", "lora", "lora_modules", "compression"] {
            #expect(o[key] != nil, "missing key \(key)")
        }
        #expect(o["destination"] as? String == "cpeft")
        let input = try #require((o["inputs"] as? [[String: Any]])?.first)
        #expect(input["format"] as? String == "peft-folder" && input["peft_type"] as? String == "LORA")
        let tensor = try #require((o["tensors"] as? [[String: Any]])?.first)
        for key in ["name", "dtype", "shape", "how"] { #expect(tensor[key] != nil, "tensor key \(key)") }
        let module = try #require((o["lora_modules"] as? [[String: Any]])?.first)
        for key in ["module", "input_ranks", "rank", "how", "discarded_energy"] { #expect(module[key] != nil, "module key \(key)") }
        // Reports go to stderr when the merge itself goes to stdout.
        let piped = try CLI.run(["merge", fixture("residual.safetensors"), "-o", "-", "--json"])
        #expect(piped.status == 0 && piped.stderr.contains("\"destination\""))
        #expect(try SafeTensorsFile(file: MappedFile(path: "-", contents: piped.stdout)).tensors.count == 7)
    }
}

@Suite struct HelpTests {
    @Test(arguments: [["merge", "--help"], ["help", "merge"], ["compress", "--help"], ["--help"]])
    func helpPrintsUsageAndExitsZero(_ arguments: [String]) throws {
        let r = try CLI.run(arguments)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.out.contains("USAGE"), "\(r.out)")
        if arguments.contains("merge") {
            #expect(r.out.contains("--lora") && r.out.contains("truncated SVD"))
        }
    }
}
