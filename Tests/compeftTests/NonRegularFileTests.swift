import Foundation
import Testing

/// Every file compeft opens by name is refused, without blocking, when it is not a regular file
/// (issue 16 §2). A FIFO with no writer is the hard case: `open(2)` waits for a writer forever.
/// Each case runs the binary under a watchdog: a hang is a failure, not a stuck suite.
@Suite struct NonRegularFileTests {
    /// A case: what to put where, and the command that must refuse the FIFO at `fifo`.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        /// Relative to the case's folder; created as a FIFO after `setUp`.
        var fifo: String
        /// Prepares the folder (copies fixtures); gets the folder's path.
        var setUp: @Sendable (String) throws -> Void
        /// The command line; gets the folder's path.
        var arguments: @Sendable (String) -> [String]
        var testDescription: String { name }
    }

    static func copy(_ fixturePath: String, to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture(fixturePath), toPath: path)
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static let cases: [Case] = [
        Case(name: "adapter weights", fifo: "adapter/adapter_model.safetensors",
             setUp: { try copy("lora-bert-seqcls/adapter_config.json", to: $0 + "/adapter/adapter_config.json") },
             arguments: { ["compress", $0 + "/adapter", "-o", $0 + "/out.cpeft"] }),
        Case(name: "adapter_config.json", fifo: "adapter/adapter_config.json",
             setUp: { try copy("lora-bert-seqcls/adapter_model.safetensors", to: $0 + "/adapter/adapter_model.safetensors") },
             arguments: { ["compress", $0 + "/adapter", "-o", $0 + "/out.cpeft"] }),
        Case(name: "safetensors file", fifo: "w.safetensors", setUp: { _ in },
             arguments: { ["compress", $0 + "/w.safetensors", "-o", $0 + "/out.cpeft"] }),
        Case(name: "shard", fifo: "ft/model-00002-of-00003.safetensors",
             setUp: { dir in
                 for f in ["model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"] {
                     try copy("full-ft/" + f, to: dir + "/ft/" + f)
                 }
             },
             arguments: { ["compress", $0 + "/ft", "--base", fixture("tiny-bert"), "-o", $0 + "/out.cpeft"] }),
        Case(name: "sharded index", fifo: "ft/model.safetensors.index.json",
             setUp: { try copy("full-ft/model-00001-of-00003.safetensors", to: $0 + "/ft/model-00001-of-00003.safetensors") },
             arguments: { ["compress", $0 + "/ft", "--base", fixture("tiny-bert"), "-o", $0 + "/out.cpeft"] }),
        Case(name: "base model file", fifo: "base.safetensors", setUp: { _ in },
             arguments: { ["compress", fixture("full-ft-single/model.safetensors"), "--base", $0 + "/base.safetensors", "-o", $0 + "/out.cpeft"] }),
        Case(name: "base model folder", fifo: "base/model.safetensors", setUp: { try copy("tiny-bert/config.json", to: $0 + "/base/config.json") },
             arguments: { ["compress", fixture("full-ft-single/model.safetensors"), "--base", $0 + "/base", "-o", $0 + "/out.cpeft"] }),
        Case(name: "HDF5 file", fifo: "w.h5", setUp: { _ in },
             arguments: { ["compress", $0 + "/w.h5", "-o", $0 + "/out.cpeft"] }),
        Case(name: "torch file", fifo: "w.bin", setUp: { _ in },
             arguments: { ["compress", $0 + "/w.bin", "-o", $0 + "/out.cpeft"] }),
        Case(name: "analyze input", fifo: "w.safetensors", setUp: { _ in },
             arguments: { ["analyze", $0 + "/w.safetensors", "--densities", "10"] }),
        Case(name: "decompress container", fifo: "c.cpeft", setUp: { _ in },
             arguments: { ["decompress", $0 + "/c.cpeft", "-o", $0 + "/out"] }),
        Case(name: "inspect container", fifo: "c.cpeft", setUp: { _ in }, arguments: { ["inspect", $0 + "/c.cpeft"] }),
        Case(name: "verify container", fifo: "c.cpeft", setUp: { _ in }, arguments: { ["verify", $0 + "/c.cpeft"] }),
        Case(name: "decompress base", fifo: "base.safetensors",
             setUp: { dir in
                 let made = try CLI.run(["compress", fixture("full-ft"), "--base", fixture("tiny-bert"), "-o", dir + "/ft.cpeft"])
                 guard made.status == 0 else { throw CocoaError(.fileWriteUnknown) }
             },
             arguments: { ["decompress", $0 + "/ft.cpeft", "--base", $0 + "/base.safetensors", "-o", $0 + "/out"] }),
        Case(name: "merge input", fifo: "c.cpeft", setUp: { _ in },
             arguments: { ["merge", $0 + "/c.cpeft", fixture("residual.safetensors"), "-o", $0 + "/out.safetensors"] }),
        Case(name: "merge --config", fifo: "merge.json", setUp: { _ in },
             arguments: { ["merge", "--config", $0 + "/merge.json", "-o", $0 + "/out.safetensors"] }),
        Case(name: "merge --base", fifo: "base.safetensors", setUp: { _ in },
             arguments: {
                 ["merge", fixture("full-ft-single/model.safetensors"), fixture("full-ft"), "--base", $0 + "/base.safetensors",
                  "-o", $0 + "/out.safetensors"]
             }),
    ]

    @Test(arguments: cases)
    func fifoIsRefusedWithoutBlocking(_ c: Case) throws {
        let dir = scratchDirectory("fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try c.setUp(dir)
        let fifo = dir + "/" + c.fifo
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: fifo).deletingLastPathComponent().path, withIntermediateDirectories: true)
        #expect(mkfifo(fifo, 0o644) == 0)
        // No writer ever opens the FIFO: a reader that opens it without O_NONBLOCK waits forever.
        let result = try BoundedRun.run(c.arguments(dir), seconds: 60)
        #expect(!result.timedOut, "compeft blocked on the FIFO '\(c.fifo)' and was killed after \(result.seconds) s")
        #expect(result.status == 4, "\(result.stderr)")
        #expect(result.stderr.contains(c.fifo), "the error names the FIFO: \(result.stderr)")
        #expect(result.stderr.contains("not a regular file (it is a FIFO (named pipe))"), "\(result.stderr)")
        // Nothing was written.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("out") || $0.hasPrefix(".out") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test func stdinStaysStandardInput() throws {
        let input = try Data(contentsOf: URL(fileURLWithPath: fixture("residual.safetensors")))
        let result = try CLI.run(["compress", "-", "-o", "-", "--density", "10", "--quiet"], stdin: input)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.starts(with: [0x89, 0x43, 0x50, 0x45, 0x46, 0x54]))
    }
}
