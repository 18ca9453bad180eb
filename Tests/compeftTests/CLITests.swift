import Foundation
import Testing

@Suite struct CLITests {
    @Test func compressInspectVerifyDecompressWorkOnEveryFixture() throws {
        for name in ["lora-bert-seqcls", "ia3-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16", "residual.safetensors"] {
            let dir = scratchDirectory("e2e")
            let before = snapshot(fixture(name))
            let c = try CLI.run(["compress", fixture(name), "-o", dir + "/x.cpeft", "--density", "10"])
            #expect(c.status == 0, "\(name): \(c.stderr)")
            #expect(c.out.contains("smaller"))
            let inspect = try CLI.run(["inspect", dir + "/x.cpeft"])
            #expect(inspect.status == 0 && inspect.out.contains("stored as"))
            let json = try CLI.run(["inspect", dir + "/x.cpeft", "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
            #expect((object["tensors"] as? [Any])?.isEmpty == false)
            #expect(try CLI.run(["verify", dir + "/x.cpeft"]).status == 0)
            let d = try CLI.run(["decompress", dir + "/x.cpeft", "-o", dir + "/out"])
            #expect(d.status == 0, "\(name): \(d.stderr)")
            #expect(snapshot(fixture(name)) == before, "\(name): the input must not change")
        }
    }

    @Test func verifyExitsOneAndNamesTheDamagedTensor() throws {
        let dir = scratchDirectory("verify")
        #expect(try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft"]).status == 0)
        let json = try CLI.run(["inspect", dir + "/x.cpeft", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        // Damage the middle of one tensor's payload, located through inspect's JSON.
        let victim = tensors[3]
        let name = try #require(victim["name"] as? String)
        let offset = try #require(victim["offset"] as? Int) + (victim["stored_bytes"] as? Int ?? 2) / 2
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/x.cpeft"))
        bytes[offset] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.cpeft"))
        let v = try CLI.run(["verify", dir + "/bad.cpeft"])
        #expect(v.status == 1)
        #expect(v.stderr.contains("checksum mismatch"))
        #expect(v.stderr.contains("bad.cpeft"))
        #expect(v.stderr.contains("tensor '\(name)'"))
        let d = try CLI.run(["decompress", dir + "/bad.cpeft", "-o", dir + "/out"])
        #expect(d.status == 3)
        #expect(d.stderr.split(separator: "\n").count == 1, "one line: \(d.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
    }

    @Test func usageErrorsExitTwo() throws {
        let dir = scratchDirectory("usage")
        for args in [["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x", "--density", "0"],
                     ["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x", "--density", "101"],
                     ["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x", "--alpha", "-1"],
                     ["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x", "--method", "magic"],
                     ["compress", fixture("lora-bert-seqcls")],
                     ["frobnicate"]] {
            let r = try CLI.run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(!r.stderr.isEmpty)
        }
    }

    @Test func badInputsExitThreeOrFourWithOneLineAndNoOutput() throws {
        let dir = scratchDirectory("bad")
        // Truncated safetensors: header length past the end of the file.
        var truncated = try Data(contentsOf: URL(fileURLWithPath: fixture("residual.safetensors")))
        truncated = truncated.prefix(100)
        try truncated.write(to: URL(fileURLWithPath: dir + "/trunc.safetensors"))
        let cases: [([String], Int32, String)] = [
            (["compress", dir + "/trunc.safetensors", "-o", dir + "/o1.cpeft"], 3, "trunc.safetensors"),
            (["compress", dir + "/missing", "-o", dir + "/o2.cpeft"], 4, "no such file"),
            (["decompress", fixture("residual.safetensors"), "-o", dir + "/o3"], 3, "not a compeft container"),
            (["compress", fixture("full-ft"), "--base", fixture("residual.safetensors"), "-o", dir + "/o4.cpeft"], 3, "tensor"),
        ]
        for (args, status, mention) in cases {
            let r = try CLI.run(args)
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(mention), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(entries == ["trunc.safetensors"], "no output or temporary file may be left: \(entries)")
    }

    @Test func existingOutputNeedsForceAndTheInputIsNeverTheOutput() throws {
        let dir = scratchDirectory("force")
        #expect(try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft"]).status == 0)
        let again = try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft"])
        #expect(again.status == 4 && again.stderr.contains("--force"))
        #expect(try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft", "--force"]).status == 0)
        let onto = try CLI.run(["decompress", dir + "/x.cpeft", "-o", dir, "--force"])
        #expect(onto.status == 4 && onto.stderr.contains("input"), "\(onto.stderr)")
        #expect(try CLI.run(["verify", dir + "/x.cpeft"]).status == 0)
    }

    @Test func pipesWorkThroughStdinAndStdout() throws {
        let dir = scratchDirectory("pipe")
        let residual = try Data(contentsOf: URL(fileURLWithPath: fixture("residual.safetensors")))
        let c = try CLI.run(["compress", "-", "-o", "-", "--density", "10"], stdin: residual)
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.prefix(6) == Data([0x89, 0x43, 0x50, 0x45, 0x46, 0x54]), "stdout holds only the container")
        let d = try CLI.run(["decompress", "-", "-o", "-"], stdin: c.stdout)
        #expect(d.status == 0, "\(d.stderr)")
        try d.stdout.write(to: URL(fileURLWithPath: dir + "/via-pipe.safetensors"))
        let viaFile = try CLI.run(["decompress", "-", "-o", dir + "/via-file.safetensors"], stdin: c.stdout)
        #expect(viaFile.status == 0)
        #expect(FileManager.default.contentsEqual(atPath: dir + "/via-pipe.safetensors", andPath: dir + "/via-file.safetensors"))
        // '-o -' is one safetensors file for any container; an adapter's config is left out, with a warning.
        let adapter = try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", "-"])
        let tensorsOnly = try CLI.run(["decompress", "-", "-o", "-"], stdin: adapter.stdout)
        #expect(tensorsOnly.status == 0 && tensorsOnly.stdout.count > 8, "\(tensorsOnly.stderr)")
        #expect(tensorsOnly.stderr.contains("warning: adapter_config.json not written"), "\(tensorsOnly.stderr)")
    }

    @Test func jsonReportsParseAndCarryTheSettings() throws {
        let dir = scratchDirectory("json")
        let r = try CLI.run(["compress", fixture("ia3-bert-seqcls"), "-o", dir + "/x.cpeft", "--density", "5", "--json"])
        let o = try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        let compression = try #require(o["compression"] as? [String: Any])
        #expect(compression["density"] as? Double == 5)
        #expect(compression["alpha_requested"] as? String == "auto")
        #expect((o["output_bytes"] as? Int ?? 0) > 0)
        let v = try CLI.run(["verify", dir + "/x.cpeft", "--json"])
        let vo = try #require(try JSONSerialization.jsonObject(with: v.stdout) as? [String: Any])
        #expect(vo["ok"] as? Bool == true)
    }
}

@Suite struct HDF5OutputTests {
    @Test(.requiresPython("h5py", "numpy", install: "scripts/bootstrap.sh installs them"))
    func decompressToHDF5IsReadableByH5pyWithTheSameValues() throws {
        let dir = scratchDirectory("h5")
        #expect(try CLI.run(["compress", fixture("lora-bert-seqcls"), "-o", dir + "/x.cpeft", "--density", "10"]).status == 0)
        #expect(try CLI.run(["decompress", dir + "/x.cpeft", "-o", dir + "/st"]).status == 0)
        let r = try CLI.run(["decompress", dir + "/x.cpeft", "-o", dir + "/x.h5", "--format", "hdf5"])
        #expect(r.status == 0, "\(r.stderr)")
        let script = """
            import sys, h5py, numpy as np
            from safetensors.numpy import load_file
            st = load_file(sys.argv[2])
            with h5py.File(sys.argv[1], "r") as f:
                seen = 0
                def visit(name, obj):
                    global seen
                    if isinstance(obj, h5py.Dataset):
                        key = name.replace("/", ".")
                        assert np.array_equal(obj[()], st[key]), key
                        seen += 1
                f.visititems(visit)
            assert seen == len(st), (seen, len(st))
            print("ok", seen)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, dir + "/x.h5", dir + "/st/adapter_model.safetensors"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(out)")
        #expect(out.hasPrefix("ok 10"))
    }
}

@Suite struct ErrorMessageTests {
    @Test func contradictingInitRuleIsAnInputErrorThatSaysWhatToDo() throws {
        let dir = scratchDirectory("init")
        let r = try CLI.run(["compress", fixture("ia3-bert-seqcls"), "-o", dir + "/x.cpeft", "--init", "zero"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("IA3") && r.stderr.contains("drop --init") && r.stderr.contains("adapter_config.json"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.cpeft"))
    }

    @Test func versionHelpAndCompletionsWork() throws {
        let v = try CLI.run(["--version"])
        #expect(v.status == 0 && !v.out.isEmpty)
        for command in ["compress", "decompress", "merge", "inspect", "verify", "analyze"] {
            let h = try CLI.run([command, "--help"])
            #expect(h.status == 0 && h.out.contains("Example"), "\(command)")
        }
        let c = try CLI.run(["--generate-completion-script", "bash"])
        #expect(c.status == 0 && c.out.contains("compeft"))
    }
}
