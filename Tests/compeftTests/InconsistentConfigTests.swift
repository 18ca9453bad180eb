import AdapterFormat
import Foundation
import Quantize
import TaskVector
import Testing

/// A LoRA adapter whose `adapter_config.json` disagrees with its tensors, or that PEFT would refuse,
/// is refused by every command, naming both values; JSON numbers beyond 64 bits name their field
/// (issue 16 §6).
@Suite struct InconsistentConfigTests {
    /// A copy of the lora-bert-seqcls fixture (r = 8, every factor rank 8) with `change` applied to its config.
    static func adapter(in dir: String, named name: String = "lora", _ change: (inout [String: Any]) -> Void) throws -> String {
        let folder = dir + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture("lora-bert-seqcls/adapter_model.safetensors"), toPath: folder + "/adapter_model.safetensors")
        let original = try Data(contentsOf: URL(fileURLWithPath: fixture("lora-bert-seqcls/adapter_config.json")))
        var config = try #require(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        change(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: folder + "/adapter_config.json"))
        return folder
    }

    /// The same config written as text, for values JSONSerialization cannot write (2⁶⁴).
    static func adapter(in dir: String, replacing field: String, with literal: String) throws -> String {
        let folder = try adapter(in: dir) { _ in }
        let path = folder + "/adapter_config.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let range = try #require(text.range(of: #""\#(field)":\s*[0-9]+"#, options: .regularExpression))
        text.replaceSubrange(range, with: #""\#(field)":\#(literal)"#)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        return folder
    }

    /// Every command that reads an adapter folder, with the output it would write in `dir`.
    static func commands(_ folder: String, _ dir: String) -> [[String]] {
        [
            ["compress", folder, "-o", dir + "/out.cpeft"],
            ["analyze", folder, "--densities", "10"],
            ["merge", folder, fixture("lora-bert-seqcls"), "-o", dir + "/merged"],
            ["merge", fixture("lora-bert-seqcls"), folder, "-o", dir + "/merged"],
        ]
    }

    static func expectRefusedByEveryCommand(_ folder: String, in dir: String, message: String,
                                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        for arguments in commands(folder, dir) {
            let r = try CLI.run(arguments)
            #expect(r.status == 3, "\(arguments[0]): \(r.stderr)", sourceLocation: sourceLocation)
            #expect(r.stderr.contains(message), "\(arguments[0]): \(r.stderr)", sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.cpeft") && !FileManager.default.fileExists(atPath: dir + "/merged"),
                    sourceLocation: sourceLocation)
        }
    }

    @Test func rankZeroIsRefusedByEveryCommand() throws {
        let dir = scratchDirectory("config-r0")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try Self.adapter(in: dir) { $0["r"] = 0 }
        try Self.expectRefusedByEveryCommand(folder, in: dir, message: "adapter_config.json: r is 0; a LoRA rank must be a positive integer")
    }

    @Test func rankThatDisagreesWithTheTensorsIsRefusedByEveryCommandNamingBoth() throws {
        let dir = scratchDirectory("config-r16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try Self.adapter(in: dir) { $0["r"] = 16 }
        try Self.expectRefusedByEveryCommand(folder, in: dir, message: "has rank 8 (shape [8, 64]) but adapter_config.json says r = 16")
    }

    @Test func rankPatternThatDisagreesIsRefusedAndOneThatAgreesIsAccepted() throws {
        let dir = scratchDirectory("config-pattern")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let wrong = try Self.adapter(in: dir, named: "wrong") { $0["rank_pattern"] = ["query": 4] }
        try Self.expectRefusedByEveryCommand(wrong, in: dir, message: "but adapter_config.json says rank_pattern['query'] = 4")
        // r says 4, but the patterns give every module its true rank 8: PEFT loads it, so does compeft.
        let right = try Self.adapter(in: dir, named: "right") {
            $0["r"] = 4
            $0["rank_pattern"] = ["query": 8, "value": 8]
        }
        let r = try CLI.run(["compress", right, "-o", dir + "/right.cpeft"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func alphaPatternThatIsNotANumberIsRefused() throws {
        let dir = scratchDirectory("config-alpha")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try Self.adapter(in: dir) { $0["alpha_pattern"] = ["query": "32"] }
        try Self.expectRefusedByEveryCommand(folder, in: dir, message: "alpha_pattern['query'] must be a number, got a string")
    }

    @Test(arguments: [("18446744073709551616", "r is 18446744073709551616, out of range: too large for 64 bits"),
                      ("1e400", "field 'r' is 1e400, out of range: too large for a 64-bit float")])
    func rankBeyond64BitsIsOutOfRangeNotInvalidJSON(literal: String, message: String) throws {
        let dir = scratchDirectory("config-huge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = try Self.adapter(in: dir, replacing: "r", with: literal)
        try Self.expectRefusedByEveryCommand(folder, in: dir, message: message)
    }

    /// A container of the fixture whose stored adapter_config.json says r = 4 (tensors are rank 8),
    /// as an older compeft, or a hand, could have written it.
    static func containerWithInconsistentConfig(in dir: String) throws -> String {
        var input = try TaskVectorInput.load(path: fixture("lora-bert-seqcls"))
        let original = try #require(input.auxiliaryFiles.first { $0.name == "adapter_config.json" })
        var config = try #require(try JSONSerialization.jsonObject(with: Data(original.bytes)) as? [String: Any])
        config["r"] = 4
        let bytes = [UInt8](try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]))
        input.auxiliaryFiles = input.auxiliaryFiles.map { $0.name == "adapter_config.json" ? ($0.name, bytes) : $0 }
        let path = dir + "/inconsistent.cpeft"
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: path))
        return path
    }

    @Test func containerHoldingAnInconsistentConfigIsRefusedByDecompressMergeAndVerify() throws {
        let dir = scratchDirectory("config-container")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let container = try Self.containerWithInconsistentConfig(in: dir)
        let message = "has rank 8 (shape [8, 64]) but adapter_config.json says r = 4"
        for arguments in [["decompress", container, "-o", dir + "/out"],
                          ["decompress", container, "-o", dir + "/out.h5", "--format", "hdf5"],
                          ["merge", container, fixture("lora-bert-seqcls"), "-o", dir + "/out"]] {
            let r = try CLI.run(arguments)
            #expect(r.status == 3, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(container) && r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
        let verify = try CLI.run(["verify", container])
        #expect(verify.status == 1, "\(verify.stderr)")
        #expect(verify.stderr.contains(message), "\(verify.stderr)")
        // inspect shows what is there.
        #expect(try CLI.run(["inspect", container]).status == 0)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["inconsistent.cpeft"])
    }

    @Test func mergeConfigNumberBeyond64BitsNamesTheField() throws {
        let dir = scratchDirectory("merge-config-huge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"inputs": ["a.cpeft", "b.cpeft"], "seed": 18446744073709551616}"#.utf8).write(to: URL(fileURLWithPath: dir + "/merge.json"))
        let r = try CLI.run(["merge", "--config", dir + "/merge.json", "-o", dir + "/out"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("field 'seed' is 18446744073709551616, out of range: too large for 64 bits"), "\(r.stderr)")
    }
}
