import AdapterFormat
import ArgumentParser
import Commands
@testable import compeft
import Foundation
import Quantize
import TaskVector
import Testing

/// Every command's options as the parser reads them (`Compeft.parseAsRoot`), without running anything:
/// values, defaults, and the errors a wrong value gets, which must name what is allowed.
@Suite struct ParsingTests {
    /// Parses `arguments` as the root command would, expecting `C`.
    func parse<C: ParsableCommand>(_ arguments: [String], as type: C.Type = C.self) throws -> C {
        let command = try Compeft.parseAsRoot(arguments)
        return try #require(command as? C, "parsed \(Swift.type(of: command)), not \(C.self)")
    }

    /// The message of the error `arguments` get, or a failed expectation when they parse.
    func failure(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try Compeft.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed", sourceLocation: sourceLocation)
            return ""
        } catch {
            #expect(Compeft.exitCode(for: error) != .success, sourceLocation: sourceLocation)
            return Compeft.message(for: error)
        }
    }

    // MARK: - compress

    @Test func compressDefaults() throws {
        let c = try parse(["compress", "in", "-o", "out.cpeft"], as: CompressCommand.self)
        // Scope, scale and gauge are left to the kind of expert (CompressionOptions.rule(for:)).
        #expect(c.options == CompressionOptions(method: .compeft, scope: nil, scale: nil, loraGauge: nil, density: .percent(20), alpha: .auto))
        let paper = try parse(["compress", "in", "-o", "out.cpeft", "--scope", "global", "--scale", "global", "--lora-gauge", "trained"],
                              as: CompressCommand.self)
        #expect(paper.options == .paper(density: .percent(20)))
        #expect(c.`init` == nil && c.zstdLevel == 19 && c.threads == nil && !c.force && !c.compressAll)
    }

    @Test(arguments: [("20", 20.0), ("20%", 20), ("5%", 5), ("0.5%", 0.5), ("100", 100)])
    func compressReadsDensities(text: String, percent: Double) throws {
        let c = try parse(["compress", "in", "-o", "out", "--density", text], as: CompressCommand.self)
        #expect(c.options.density == .percent(percent))
    }

    @Test func compressReadsEveryOption() throws {
        let c = try parse(["compress", "in", "-o", "out", "--method", "stc", "--scope", "tensor", "--alpha", "2.5",
                           "--init", "one", "--threads", "3", "--zstd-level", "3", "--base", "b", "--compress-all", "--force"],
                          as: CompressCommand.self)
        #expect(c.options == CompressionOptions(method: .stc, scope: .tensor, density: .percent(20), alpha: .value(2.5)))
        #expect(c.`init` == .one && c.threads == 3 && c.zstdLevel == 3 && c.base == "b" && c.compressAll && c.force)
    }

    /// issue 17 §2: a bare value below 1 is refused with both readings; a negative one is out of range
    /// (not "Missing value").
    @Test func compressExplainsRefusedDensities() {
        let fraction = failure(["compress", "in", "-o", "out", "--density", "0.2"])
        #expect(fraction.contains("0.2%") && fraction.contains("or 20 to keep 20 %"), "\(fraction)")
        let negative = failure(["compress", "in", "-o", "out", "--density", "-5"])
        #expect(negative.contains("must be in (0, 100]") && !negative.contains("Missing"), "\(negative)")
        #expect(failure(["compress", "in", "-o", "out", "--density", "150"]).contains("(0, 100]"))
        #expect(failure(["compress", "in", "-o", "out", "--density", "x"]).contains("'x' is not a density"))
    }

    @Test func compressNamesTheAllowedValues() {
        #expect(failure(["compress", "in", "-o", "out", "--method", "ties"]).contains("'compeft', 'stc' or 'prune'"))
        #expect(failure(["compress", "in", "-o", "out", "--scope", "layer"]).contains("'global' and 'tensor'"))
        #expect(failure(["compress", "in", "-o", "out", "--init", "base"]).contains("'zero' and 'one'"))
        #expect(failure(["compress", "in", "-o", "out", "--alpha", "-1"]).contains("α must be a positive number or auto"))
        #expect(failure(["compress", "in", "-o", "out", "--alpha", "0"]).contains("α must be a positive number or auto"))
    }

    @Test func compressChecksWhatNeedsNoFile() {
        #expect(failure(["compress", "in", "-o", "out", "--zstd-level", "23"]).contains("--zstd-level must be 1…22"))
        #expect(failure(["compress", "in", "-o", "out", "--threads", "0"]).contains("--threads must be at least 1"))
        #expect(failure(["compress", "in", "-o", "out", "--threads", "-2"]).contains("--threads must be at least 1"))
        #expect(failure(["compress", "-", "-o", "out", "--base", "b"]).contains("--base needs the fine-tune as a file"))
        #expect(failure(["compress", "in"]).contains("Missing expected argument '--output <output>'"))
    }

    // MARK: - decompress

    @Test func decompressReadsDTypeAndFormat() throws {
        let plain = try parse(["decompress", "a.cpeft", "-o", "out"], as: DecompressCommand.self)
        #expect(plain.dtype == nil && plain.format == nil)
        let c = try parse(["decompress", "a.cpeft", "-o", "out.h5", "--dtype", "half", "--format", "hdf5", "--threads", "2"],
                          as: DecompressCommand.self)
        #expect(c.dtype == .f16 && c.format == .hdf5 && c.threads == 2)
        #expect(try parse(["decompress", "a", "-o", "o", "--dtype", "BF16"], as: DecompressCommand.self).dtype == .bf16)
    }

    @Test func decompressNamesTheAllowedValues() {
        #expect(failure(["decompress", "a", "-o", "o", "--dtype", "f64"]).contains("'f32', 'f16' or 'bf16'"))
        #expect(failure(["decompress", "a", "-o", "o", "--format", "zip"]).contains("'safetensors' and 'hdf5'"))
        #expect(failure(["decompress", "a", "-o", "-", "--format", "hdf5"]).contains("--format hdf5 disagrees with the output"))
        #expect(failure(["decompress", "a", "-o", "o", "--threads", "0"]).contains("--threads must be at least 1"))
    }

    // MARK: - merge

    @Test func mergeDefaults() throws {
        let m = try parse(["merge", "a", "b", "-o", "m"], as: MergeCommand.self)
        let plan = try m.plan()
        #expect(plan.method == .taskArithmetic && plan.density == .percent(20) && plan.election == nil)
        #expect(plan.options.weights == [1, 1] && plan.options.lambda == 1 && plan.options.seed == 0)
        #expect(plan.options.scope == .tensor && plan.options.lora == .exact && plan.options.rank == nil)
        guard case .folder = plan.destination else { Issue.record("\(plan.destination)"); return }
    }

    @Test func mergeReadsEveryOption() throws {
        let m = try parse(["merge", "a", "b", "-o", "m.cpeft", "--method", "dare_ties", "--density", "30%", "--weights", "1,-0.5",
                           "--lambda", "-2", "--election", "frequency", "--seed", "7", "--lora", "exact",
                           "--rank", "4", "--out-density", "10", "--out-alpha", "3", "--base", "base", "--expand", "--force"],
                          as: MergeCommand.self)
        let plan = try m.plan()
        #expect(plan.method == .dareTies && plan.density == .percent(30) && plan.election == .frequency)
        #expect(plan.options.method == .dareTies(density: .percent(30), election: .frequency))
        #expect(plan.options.weights == [1, -0.5] && plan.options.lambda == -2 && plan.options.seed == 7)
        #expect(plan.options.scope == .tensor && plan.options.rank == 4 && plan.options.expand && plan.force)
        #expect(plan.loraSettings == ["lora", "rank"] && plan.target == .container)
        let ties = try parse(["merge", "a", "b", "-o", "m.h5", "--method", "ties", "--scope", "global"], as: MergeCommand.self).plan()
        #expect(ties.options.scope == .global && ties.target == .hdf5)
        #expect(plan.base == "base")
        guard case .container(let options, _) = plan.destination else { Issue.record("\(plan.destination)"); return }
        #expect(options == CompressionOptions(density: .percent(10), alpha: .value(3)))
    }

    @Test func mergeNamesTheAllowedValues() {
        #expect(failure(["merge", "a", "-o", "m", "--method", "mean"])
            .contains("'task-arithmetic', 'ties', 'dare-linear', 'dare-ties' or 'magnitude-prune'"))
        #expect(failure(["merge", "a", "-o", "m", "--election", "sum"]).contains("'total' and 'frequency'"))
        #expect(failure(["merge", "a", "-o", "m", "--scope", "all"]).contains("'tensor' and 'global'"))
        #expect(failure(["merge", "a", "-o", "m", "--lora", "svd"]).contains("'exact' and 'factors'"))
        #expect(failure(["merge", "a", "-o", "m", "--density", "0.2"]).contains("0.2%"))
        #expect(failure(["merge", "a", "-o", "m.cpeft", "--out-density", "-5"]).contains("(0, 100]"))
        #expect(failure(["merge", "a", "-o", "m.cpeft", "--out-alpha", "x"]).contains("α must be a positive number or auto"))
        #expect(failure(["merge", "a", "-o", "m", "--weights", "1,x"]).contains("weights must be comma-separated numbers"))
    }

    @Test func mergeChecksSettingsThatNeedNoInput() {
        #expect(failure(["merge", "-o", "m"]).contains("give at least one INPUT"))
        #expect(failure(["merge", "a"]).contains("give an output with -o"))
        #expect(failure(["merge", "a", "b", "-o", "m", "--weights", "1"]).contains("1 weight(s) for 2 input(s)"))
        #expect(failure(["merge", "a", "-o", "m", "--rank", "0"]).contains("--rank must be positive"))
        #expect(failure(["merge", "a", "-o", "m", "--rank", "4", "--lora", "factors"]).contains("--rank applies to --lora exact"))
        #expect(failure(["merge", "a", "-o", "m", "--out-density", "10"]).contains("apply to a .cpeft output"))
    }

    /// issue 17 §4: an option the method does not use is refused, naming the method, from a flag or a
    /// config key alike.
    @Test func mergeRefusesWhatTheMethodDoesNotUse() throws {
        let density = failure(["merge", "a", "b", "-o", "m", "--density", "50"])
        #expect(density.contains("--density does not apply to task-arithmetic"), "\(density)")
        #expect(failure(["merge", "a", "b", "-o", "m", "--method", "dare-linear", "--election", "frequency"])
            .contains("--election does not apply to dare-linear"))
        #expect(failure(["merge", "a", "b", "-o", "m", "--election", "total"]).contains("--election does not apply to task-arithmetic"))
        #expect(failure(["merge", "a", "b", "-o", "m", "--method", "ties", "--seed", "3"]).contains("--seed does not apply to ties"))
        #expect(failure(["merge", "a", "b", "-o", "m", "--method", "dare-ties", "--scope", "global"])
            .contains("--scope does not apply to dare-ties"))
        let path = try config("unused.yaml", "inputs: [a, b]\noutput: m\nmethod: magnitude-prune\nelection: total\n")
        #expect(failure(["merge", "--config", path]).contains("--election does not apply to magnitude-prune"))
        for used in [["--method", "ties", "--density", "50", "--election", "frequency", "--scope", "global"],
                     ["--method", "dare-ties", "--density", "50", "--election", "total", "--seed", "1"],
                     ["--method", "dare-linear", "--density", "50", "--seed", "1"],
                     ["--method", "magnitude-prune", "--density", "50", "--scope", "tensor"]] {
            #expect(throws: Never.self) { try parse(["merge", "a", "b", "-o", "m"] + used, as: MergeCommand.self).plan() }
        }
    }

    // MARK: - merge --config

    func config(_ name: String, _ text: String) throws -> String {
        let dir = scratchDirectory("config")
        try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        return dir + "/" + name
    }

    @Test func yamlAndJSONConfigsGiveTheSameSettings() throws {
        let yaml = try config("merge.yaml", """
            inputs: [a, b.cpeft]
            output: merged.cpeft
            method: TIES
            density: 20%
            election: frequency
            weights: "1,0.5"
            lambda: 0.5
            seed: 3
            scope: global
            out_density: 10
            out_alpha: auto
            force: true
            """)
        let json = try config("merge.json", """
            {"inputs": ["a", "b.cpeft"], "output": "merged.cpeft", "method": "ties", "density": 20,
             "election": "frequency", "weights": [1, 0.5], "lambda": 0.5, "seed": 3, "scope": "global",
             "out_density": "10%", "out_alpha": "auto", "force": true}
            """)
        let fromYAML = try MergeSettings.load(path: yaml)
        let fromJSON = try MergeSettings.load(path: json)
        let folder = URL(fileURLWithPath: yaml).deletingLastPathComponent().path
        #expect(fromYAML.inputs == [folder + "/a", folder + "/b.cpeft"] && fromYAML.output == folder + "/merged.cpeft")
        #expect(fromYAML.method == .ties && fromYAML.density == .percent(20) && fromYAML.weights?.values == [1, 0.5])
        #expect(fromYAML.outDensity == .percent(10) && fromYAML.outAlpha == .auto && fromYAML.force == true)
        var jsonInFolder = fromJSON
        jsonInFolder.inputs = fromJSON.inputs?.map { folder + "/" + URL(fileURLWithPath: $0).lastPathComponent }
        jsonInFolder.output = fromJSON.output.map { folder + "/" + URL(fileURLWithPath: $0).lastPathComponent }
        #expect(jsonInFolder == fromYAML)
    }

    @Test func flagsOverrideTheConfig() throws {
        let path = try config("set.yml", "inputs: [a, b]\noutput: m\nmethod: ties\ndensity: 30\nscope: global\n")
        let m = try parse(["merge", "--config", path, "--density", "50", "--method", "magnitude-prune"], as: MergeCommand.self)
        let plan = try m.plan()
        #expect(plan.method == .magnitudePrune && plan.density == .percent(50) && plan.options.scope == .global)
        #expect(plan.inputs.count == 2 && plan.output.hasSuffix("/m"))
    }

    @Test func configErrorsNameTheKey() throws {
        let unknown = failure(["merge", "--config", try config("u.yaml", "inputs: [a]\noutput: m\ndensty: 20\n")])
        #expect(unknown.contains("unknown key 'densty'") && unknown.contains("density"), "\(unknown)")
        let fraction = failure(["merge", "--config", try config("f.yaml", "inputs: [a]\noutput: m\ndensity: 0.2\n")])
        #expect(fraction.contains("'density'") && fraction.contains("0.2%"), "\(fraction)")
        let method = failure(["merge", "--config", try config("m.json", #"{"inputs": ["a"], "output": "m", "method": "sum"}"#)])
        #expect(method.contains("'method'") && method.contains("task-arithmetic"), "\(method)")
        let seed = failure(["merge", "--config", try config("s.json", #"{"inputs": ["a"], "output": "m", "seed": "x"}"#)])
        #expect(seed.contains("'seed' must be a non-negative integer"), "\(seed)")
        let notMapping = failure(["merge", "--config", try config("l.yaml", "- a\n- b\n")])
        #expect(notMapping.contains("YAML mapping"), "\(notMapping)")
    }

    // MARK: - analyze

    @Test func analyzeReadsDensityLists() throws {
        let plain = try parse(["analyze", "in"], as: AnalyzeCommand.self)
        #expect(plain.densities == [1, 2, 5, 10, 20, 30, 50].map(Density.percent))
        let a = try parse(["analyze", "in", "--densities", "10,0.5%, 5%,10", "--method", "stc", "--scope", "tensor",
                           "--alpha", "2"], as: AnalyzeCommand.self)
        #expect(a.densities == [0.5, 5, 10].map(Density.percent))
        #expect(a.options == CompressionOptions(method: .stc, scope: .tensor, density: .full, alpha: .value(2)))
    }

    @Test func analyzeExplainsRefusedValues() {
        #expect(failure(["analyze", "in", "--densities", "1,0.5"]).contains("0.5%"))
        #expect(failure(["analyze", "in", "--densities", "-5"]).contains("(0, 100]"))
        #expect(failure(["analyze", "in", "--densities", ""]).contains("at least one density"))
        #expect(failure(["analyze", "in", "--densities", "1,,5"]).contains("empty entry"))
        #expect(failure(["analyze", "in", "--method", "prune"]).contains("analyze measures ternary codes"))
        #expect(failure(["analyze", "in", "--method", "x"]).contains("'compeft', 'stc' or 'prune'"))
        #expect(failure(["analyze", "in", "--plot", ""]).contains("--plot needs a file path"))
        // issue 17 §3: the chart is SVG, so a name promising another format is refused.
        #expect(failure(["analyze", "in", "--plot", "p.png"]).contains("--plot writes an SVG chart; name the file NAME.svg"))
        #expect(throws: Never.self) { try parse(["analyze", "in", "--plot", "P.SVG"], as: AnalyzeCommand.self) }
        #expect(failure(["analyze", "-", "--base", "b"]).contains("--base needs the fine-tune as a file"))
    }

    // MARK: - inspect, verify, and every command's help

    @Test func inspectAndVerifyTakeTheCommonOptions() throws {
        let i = try parse(["inspect", "a.cpeft", "--json"], as: InspectCommand.self)
        #expect(i.input == "a.cpeft" && i.common.json)
        let v = try parse(["verify", "a.cpeft", "--quiet", "-v"], as: VerifyCommand.self)
        #expect(v.input == "a.cpeft" && v.common.quiet && v.common.verbose)
        #expect(failure(["inspect"]).contains("Missing expected argument"))
    }

    /// `--help` lists the values of every enumerated option, and bash completion offers them.
    @Test func helpAndCompletionListTheValues() {
        let compress = Compeft.helpMessage(for: CompressCommand.self, columns: 1000)
        #expect(compress.contains("(values: compeft, stc, prune; default: compeft)"))
        #expect(compress.contains("(values: global, tensor)"))
        #expect(compress.contains("(values: global, tensor, module)"))
        #expect(compress.contains("(values: trained, svd, svd-dct, auto)"))
        #expect(compress.contains("(values: zero, one)"))
        let decompress = Compeft.helpMessage(for: DecompressCommand.self, columns: 1000)
        #expect(decompress.contains("(values: f32, f16, bf16)") && decompress.contains("(values: safetensors, hdf5)"))
        let merge = Compeft.helpMessage(for: MergeCommand.self, columns: 1000)
        #expect(merge.contains("(values: task-arithmetic, ties, dare-linear, dare-ties, magnitude-prune)"))
        #expect(merge.contains("(values: total, frequency)") && merge.contains("(values: tensor, global)")
                && merge.contains("(values: exact, factors)"))
        let analyze = Compeft.helpMessage(for: AnalyzeCommand.self, columns: 1000)
        #expect(analyze.contains("(values: compeft, stc, prune; default: compeft)"))
        let bash = Compeft.completionScript(for: .bash)
        for values in ["compeft stc prune", "global tensor", "zero one", "f32 f16 bf16", "safetensors hdf5",
                       "task-arithmetic ties dare-linear dare-ties magnitude-prune", "total frequency", "exact factors",
                       "global tensor module", "trained svd svd-dct auto"] {
            // The script offers a list as -W 'a'$'\n''b'.
            let list = values.split(separator: " ").map { "'\($0)'" }.joined(separator: "$'\\n'")
            #expect(bash.contains("-W " + list), "bash completion lacks \(values)")
        }
    }
}
