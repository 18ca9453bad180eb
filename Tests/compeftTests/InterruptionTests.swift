import CompeftTestSupport
import Foundation
import Testing

/// SIGINT, SIGTERM and SIGHUP in the middle of `compress`, `decompress`, `merge` and `analyze` leave
/// nothing behind and the destination untouched; SIGKILL leaves no file output behind (issue 16 §4).
///
/// The inputs are large enough (2²³ values) that the built binary is still working when its
/// temporary output appears; the test then signals it and looks at the folders afterwards.
@Suite struct InterruptionTests {
    /// Inputs shared by every case, made once: two residual files, a sharded checkpoint, and their containers.
    struct Workspace {
        let folder: String
        var big: String { folder + "/big.safetensors" }
        var big2: String { folder + "/big2.safetensors" }
        var sharded: String { folder + "/sharded" }
        var bigContainer: String { folder + "/big.cpeft" }
        var shardedContainer: String { folder + "/sharded.cpeft" }
    }

    static let values = 1 << 23

    /// A safetensors file of one F32 tensor `name` of `count` seeded values in [-0.5, 0.5).
    static func writeResidual(_ path: String, name: String, count: Int, seed: UInt64) throws {
        var header = Array(#"{"\#(name)":{"dtype":"F32","shape":[\#(count)],"data_offsets":[0,\#(4 * count)]}}"#.utf8)
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + header.count + 4 * count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes += $0 }
        bytes += header
        var rng = SplitMix64(seed: seed)
        for _ in 0..<count {
            let v = Float(rng.next() >> 40) / Float(1 << 24) - 0.5
            withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static let workspace: Result<Workspace, any Error> = Result {
        let w = Workspace(folder: scratchDirectory("interrupt-inputs"))
        try writeResidual(w.big, name: "w", count: values, seed: 16)
        try writeResidual(w.big2, name: "w", count: values, seed: 17)
        try FileManager.default.createDirectory(atPath: w.sharded, withIntermediateDirectories: true)
        try writeResidual(w.sharded + "/model-00001-of-00002.safetensors", name: "a", count: values / 2, seed: 18)
        try writeResidual(w.sharded + "/model-00002-of-00002.safetensors", name: "b", count: values / 2, seed: 19)
        let index = #"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: URL(fileURLWithPath: w.sharded + "/model.safetensors.index.json"))
        for (input, output) in [(w.big, w.bigContainer), (w.sharded, w.shardedContainer)] {
            let made = try CLI.run(["compress", input, "-o", output, "--density", "10", "--quiet"])
            guard made.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["stderr": made.stderr]) }
        }
        return w
    }

    /// A command that writes its output (`out…`) into a fresh folder.
    struct Job: CustomTestStringConvertible, Sendable {
        var name: String
        var arguments: @Sendable (Workspace, String) -> [String]
        var testDescription: String { name }
    }

    static let compress = Job(name: "compress → file") { w, dir in ["compress", w.big, "-o", dir + "/out.cpeft", "--density", "10"] }
    static let decompressFile = Job(name: "decompress → file") { w, dir in ["decompress", w.bigContainer, "-o", dir + "/out.safetensors"] }
    static let decompressFolder = Job(name: "decompress → folder") { w, dir in ["decompress", w.shardedContainer, "-o", dir + "/out"] }
    static let mergeFile = Job(name: "merge → file") { w, dir in ["merge", w.big, w.big2, "-o", dir + "/out.safetensors"] }
    static let mergeFolder = Job(name: "merge → folder") { w, dir in ["merge", w.big, w.big2, "-o", dir + "/out"] }
    static let mergeContainer = Job(name: "merge → container") { w, dir in ["merge", w.big, w.big2, "-o", dir + "/out.cpeft"] }
    static let analyze = Job(name: "analyze") { w, dir in ["analyze", w.big, "--densities", "10,20", "--plot", dir + "/out.svg"] }

    static let cases: [(Job, Int32)] =
        [compress, decompressFile, decompressFolder, mergeFile].flatMap { job in [SIGINT, SIGTERM, SIGHUP].map { (job, $0) } }
        + [(mergeFolder, SIGINT), (mergeContainer, SIGTERM), (analyze, SIGHUP), (analyze, SIGINT)]

    /// Starts `job` in `dir` (with `dir/tmp` as its TMPDIR) and returns once its temporary output
    /// exists: a hidden entry in `dir` or `dir/tmp`, or an unnamed file in `dir` it holds open.
    static func startAndWaitForTemporary(_ job: Job, in dir: String, force: Bool = false) throws -> BoundedRun? {
        let w = try workspace.get()
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        let run = try BoundedRun(job.arguments(w, dir) + (force ? ["--force"] : []), environment: ["TMPDIR": dir + "/tmp"])
        let real = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let hidden = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).contains { $0.hasPrefix(".") }
            let temporary = !((try? FileManager.default.contentsOfDirectory(atPath: dir + "/tmp")) ?? []).isEmpty
            let unnamed = run.openFiles.contains { $0.hasPrefix(real + "/#") || $0.hasPrefix(dir + "/#") }
            if hidden || temporary || unnamed { return run }
            guard run.isRunning else { break }
            usleep(2_000)
        }
        let result = run.wait(seconds: 1)
        Issue.record("\(job.name) ended (status \(result.status)) before its temporary output appeared: \(result.stderr)")
        return nil
    }

    /// Every entry under `dir`, recursively.
    static func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test(arguments: cases)
    func signalMidRunLeavesNothingBehind(_ job: Job, _ signal: Int32) throws {
        let dir = scratchDirectory("interrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let run = try Self.startAndWaitForTemporary(job, in: dir) else { return }
        run.send(signal)
        let result = run.wait(seconds: 60)
        #expect(!result.timedOut, "\(job.name) did not end after signal \(signal)")
        #expect(result.reason == .uncaughtSignal && result.status == signal,
                "\(job.name) should end by signal \(signal), ended with status \(result.status): \(result.stderr)")
        #expect(Self.listing(dir) == ["tmp"], "\(job.name) left \(Self.listing(dir)) after signal \(signal)")
    }

    @Test func signalLeavesAnExistingDestinationUntouched() throws {
        let dir = scratchDirectory("interrupt-force")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: dir + "/out.cpeft"))
        guard let run = try Self.startAndWaitForTemporary(Self.compress, in: dir, force: true) else { return }
        run.send(SIGINT)
        let result = run.wait(seconds: 60)
        #expect(result.reason == .uncaughtSignal && result.status == SIGINT, "\(result.stderr)")
        #expect(Self.listing(dir) == ["out.cpeft", "tmp"])
        #expect(try String(contentsOfFile: dir + "/out.cpeft", encoding: .utf8) == "keep me")
    }

    @Test(arguments: [compress, decompressFile, mergeFile])
    func sigkillLeavesNoFileOutputBehind(_ job: Job) throws {
        let dir = scratchDirectory("interrupt-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Where the file system cannot make unnamed files the temporary has a name, and SIGKILL leaves it.
        let probe = open(dir, 0o20000000 | O_DIRECTORY | O_RDWR, 0o600)
        guard probe >= 0 else {
            try Test.cancel("skipped: the file system of \(dir) has no O_TMPFILE (\(String(cString: strerror(errno))))")
        }
        close(probe)
        guard let run = try Self.startAndWaitForTemporary(job, in: dir) else { return }
        run.send(SIGKILL)
        _ = run.wait(seconds: 60)
        #expect(Self.listing(dir) == ["tmp"], "\(job.name) left \(Self.listing(dir)) after SIGKILL")
    }

    /// An input that shrinks while compeft reads it (inputs are memory-mapped, so this is SIGBUS): an
    /// I/O error naming the input, exit status 4, and nothing left (issue 16 §3, the CLI's own reads).
    @Test(arguments: [
        Job(name: "compress") { _, dir in ["compress", dir + "/input.safetensors", "-o", dir + "/out.cpeft", "--density", "10"] },
        Job(name: "merge") { w, dir in ["merge", dir + "/input.safetensors", w.big2, "-o", dir + "/out.safetensors"] },
    ])
    func inputTruncatedMidRunIsAnIOErrorNamingIt(_ job: Job) throws {
        let dir = scratchDirectory("interrupt-truncate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/input.safetensors"
        try FileManager.default.copyItem(atPath: try Self.workspace.get().big, toPath: input)
        guard let run = try Self.startAndWaitForTemporary(job, in: dir) else { return }
        #expect(truncate(input, 4096) == 0)
        let result = run.wait(seconds: 60)
        #expect(!result.timedOut)
        #expect(result.reason == .exit && result.status == 4, "\(result.status): \(result.stderr)")
        #expect(result.stderr.contains("\(input): the file changed while compeft was reading it"), "\(result.stderr)")
        #expect(Self.listing(dir) == ["input.safetensors", "tmp"])
    }
}
