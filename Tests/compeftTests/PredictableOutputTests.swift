import Foundation
import Testing

/// issue 17: outputs a user can predict and reports a script can trust — the name given to `-o` decides
/// what is written, a failure with `--json` is a JSON error with the exit code, a merge that cannot
/// mean what it says warns, and a LoRA module the compression zeroed is named.
@Suite struct PredictableOutputTests {
    /// The JSON object on stdout.
    func object(_ r: CLI.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any], "stdout: \(r.out)\nstderr: \(r.stderr)")
    }

    func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    func startsWith(_ path: String, _ magic: [UInt8]) -> Bool {
        (FileManager.default.contents(atPath: path) ?? Data()).prefix(magic.count) == Data(magic)
    }

    static let hdf5Magic: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    // MARK: - §3: what -o writes

    @Test func theOutputNameDecidesWhatDecompressWrites() throws {
        let dir = scratchDirectory("o-decompress")
        #expect(try CLI.run(["compress", fixture("residual.safetensors"), "-o", dir + "/r.cpeft"]).status == 0)
        #expect(try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/a.cpeft"]).status == 0)
        // Any other name is a folder, even for a container of one tensor file (main wrote a file `out`).
        let folder = try CLI.run(["decompress", dir + "/r.cpeft", "-o", dir + "/out", "--json"])
        #expect(folder.status == 0 && isDirectory(dir + "/out"), "\(folder.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/out/residual.safetensors"))
        #expect(try object(folder)["destination"] as? String == "folder")
        // NAME.safetensors is one file, even for an adapter (main wrote a folder named a.safetensors).
        let file = try CLI.run(["decompress", dir + "/a.cpeft", "-o", dir + "/a.safetensors", "--json"])
        #expect(file.status == 0 && !isDirectory(dir + "/a.safetensors"), "\(file.stderr)")
        let report = try object(file)
        #expect(report["destination"] as? String == "safetensors" && report["files_left_out"] as? [String] == ["adapter_config.json"])
        #expect(file.stderr.contains("warning: adapter_config.json not written"), "\(file.stderr)")
        // NAME.h5 / NAME.hdf5 is HDF5 without --format; a --format that disagrees, or a .cpeft name, is refused.
        #expect(try CLI.run(["decompress", dir + "/r.cpeft", "-o", dir + "/r.HDF5"]).status == 0)
        #expect(startsWith(dir + "/r.HDF5", Self.hdf5Magic))
        let disagrees = try CLI.run(["decompress", dir + "/r.cpeft", "-o", dir + "/x.safetensors", "--format", "hdf5"])
        #expect(disagrees.status == 2 && disagrees.stderr.contains("--format hdf5 disagrees with the output"), "\(disagrees.stderr)")
        let container = try CLI.run(["decompress", dir + "/r.cpeft", "-o", dir + "/x.cpeft"])
        #expect(container.status == 2 && container.stderr.contains("not a container"), "\(container.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.safetensors") && !FileManager.default.fileExists(atPath: dir + "/x.cpeft"))
    }

    @Test func theOutputNameDecidesWhatMergeWrites() throws {
        let dir = scratchDirectory("o-merge")
        let inputs = [fixture("residual.safetensors"), fixture("residual.safetensors")]
        let h5 = try CLI.run(["merge"] + inputs + ["-o", dir + "/m.h5", "--json"])
        #expect(h5.status == 0 && startsWith(dir + "/m.h5", Self.hdf5Magic), "\(h5.stderr)")
        #expect(try object(h5)["destination"] as? String == "hdf5")
        #expect(try CLI.run(["merge"] + inputs + ["-o", dir + "/m"]).status == 0)
        #expect(isDirectory(dir + "/m") && FileManager.default.fileExists(atPath: dir + "/m/residual.safetensors"))
        #expect(try CLI.run(["merge"] + inputs + ["-o", dir + "/m.safetensors"]).status == 0)
        #expect(!isDirectory(dir + "/m.safetensors"))
    }

    // MARK: - §4: JSON errors, unused options, one input

    @Test func aFailureWithJSONPrintsAnErrorObjectWithTheExitCode() throws {
        let dir = scratchDirectory("json-error")
        // A usage error found while parsing (exit 2).
        let usage = try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft", "--density", "0.2", "--json"])
        let u = try #require(try object(usage)["error"] as? [String: Any])
        #expect(usage.status == 2 && u["exit_code"] as? Int == 2 && u["status"] as? String == "usage")
        #expect((u["message"] as? String)?.contains("0.2%") == true && u["file"] == nil)
        // A missing input (exit 4) names the file.
        let missing = try CLI.run(["inspect", dir + "/missing.cpeft", "--json"])
        let m = try #require(try object(missing)["error"] as? [String: Any])
        #expect(missing.status == 4 && m["exit_code"] as? Int == 4 && m["file"] as? String == dir + "/missing.cpeft")
        // A corrupt payload (exit 3) names the file and the tensor.
        #expect(try CLI.run(["compress", fixture("residual.safetensors"), "-o", dir + "/x.cpeft"]).status == 0)
        let index = try object(try CLI.run(["inspect", dir + "/x.cpeft", "--json"]))
        let victim = try #require((index["tensors"] as? [[String: Any]])?.first { $0["role"] as? String == "residual" })
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/x.cpeft"))
        bytes[try #require(victim["offset"] as? Int) + 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.cpeft"))
        let corrupt = try CLI.run(["decompress", dir + "/bad.cpeft", "-o", dir + "/out", "--json"])
        let c = try #require(try object(corrupt)["error"] as? [String: Any])
        #expect(corrupt.status == 3 && c["exit_code"] as? Int == 3 && c["status"] as? String == "input-error")
        #expect(c["file"] as? String == dir + "/bad.cpeft" && c["tensor"] as? String == victim["name"] as? String, "\(c)")
        #expect(corrupt.stderr.contains("compeft: error:"), "stderr keeps its line: \(corrupt.stderr)")
        // When stdout carries the data, the error report goes to stderr, as the report would.
        let piped = try CLI.run(["decompress", dir + "/bad.cpeft", "-o", "-", "--json"])
        #expect(piped.status == 3 && piped.stdout.isEmpty && piped.stderr.contains("\"exit_code\" : 3"), "\(piped.stderr)")
        // Without --json, stdout stays empty.
        #expect(try CLI.run(["inspect", dir + "/missing.cpeft"]).stdout.isEmpty)
    }

    @Test func mergeRefusesLoRASettingsForOtherInputsAndWarnsAboutOneInput() throws {
        let dir = scratchDirectory("merge-unused")
        let rank = try CLI.run(["merge", fixture("ia3-bert-seqcls"), fixture("ia3-bert-seqcls"), "-o", dir + "/m", "--rank", "4"])
        #expect(rank.status == 2 && rank.stderr.contains("--rank applies to LoRA adapters; the inputs are IA3 adapters"), "\(rank.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m"))
        let one = try CLI.run(["merge", fixture("lora-bert-seqcls"), "-o", dir + "/one", "--json"])
        #expect(one.status == 0 && one.stderr.contains("warning: merged a single input"), "\(one.stderr)")
        #expect((try object(one)["warnings"] as? [String])?.first?.hasPrefix("merged a single input") == true)
        let two = try CLI.run(["merge", fixture("lora-bert-seqcls"), fixture("lora-bert-seqcls"), "-o", dir + "/two", "--json"])
        let twoWarnings = try object(two)["warnings"] as? [String]
        #expect(two.status == 0 && !two.stderr.contains("warning") && twoWarnings == [])
    }

    // MARK: - §1: a LoRA module the compression zeroed

    @Test func aLoRAModuleWhoseFactorKeptNothingIsNamed() throws {
        let dir = scratchDirectory("dropped")
        // At 5 % the paper's global threshold (in the trained gauge) keeps none of layer 1's value.lora_B
        // (512 values, all small); LoRA's default rule (SVD gauge, per-module scale) keeps it.
        let module = "base_model.model.bert.encoder.layer.1.attention.self.value"
        let c = try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft", "--density", "5", "--json",
                             "--scope", "global", "--scale", "global", "--lora-gauge", "trained"])
        #expect(c.status == 0 && c.stderr.contains("warning: 1 LoRA module(s) kept no value of a factor"), "\(c.stderr)")
        let report = try object(c)
        let dropped = try #require(report["lora_modules_dropped"] as? [[String: Any]])
        #expect(dropped.count == 1 && dropped.first?["module"] as? String == module && dropped.first?["factors"] as? [String] == ["lora_B"])
        #expect((report["warnings"] as? [String])?.first?.contains(module) == true)
        let text = try CLI.run(["inspect", dir + "/x.cpeft"])
        #expect(text.out.contains("warning:     1 LoRA module(s)") && text.out.contains("kept nothing: the module's update is zero"), "\(text.out)")
        let json = try object(try CLI.run(["inspect", dir + "/x.cpeft", "--json"]))
        #expect((json["lora_modules_dropped"] as? [[String: Any]])?.first?["module"] as? String == module)
        // Per tensor, or at 10 %, every module keeps values: no warning.
        let kept = try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/y.cpeft", "--density", "5", "--scope", "tensor", "--json"])
        let none = try object(kept)["lora_modules_dropped"] as? [Any]
        #expect(kept.status == 0 && !kept.stderr.contains("warning") && none?.isEmpty == true)
    }
}
