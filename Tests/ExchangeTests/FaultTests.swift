import AdapterFormat
import Exchange
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Network faults between compeft and a real registry, injected by Tests/ExchangeTests/faultproxy.py.
@Suite(.serialized) struct FaultTests {
    @Test func droppedDownloadResumesWithRangeInTheSamePull() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 300_000, density: 20, seed: 21)
        let bytes = try contents(path)
        let ref = try Reference(parsing: "\(server.address)/faults/drop:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let cut = 20_000
        let proxy = try FaultProxy(upstream: server.port, rule: "drop:GET /v2/faults/drop/blobs/\(pushed.layer.digest):\(cut)")
        defer { proxy.stop() }
        let registry = makeRegistry(plainHTTP: true)
        let out = scratchDirectory("pull") + "/x.cpeft"
        let report = try registry.pull(try Reference(parsing: "\(proxy.address)/faults/drop:v1"), to: out)
        #expect(try contents(out) == bytes)
        #expect(proxy.log.contains { $0.hasPrefix("FIRED") })
        let blobRequests = proxy.log.filter { $0.hasPrefix("REQ") && $0.contains("/blobs/\(pushed.layer.digest)") }
        #expect(blobRequests.count == 2, "\(blobRequests)")
        #expect(blobRequests.last?.hasSuffix("range=bytes=\(cut)-") == true, "the retry asks for the rest only: \(blobRequests)")
        #expect(report.downloadedBytes == bytes.count, "every byte was received once (\(report.downloadedBytes))")
    }

    @Test func serverErrorsAreRetriedWithBackoff() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let ref = try Reference(parsing: "\(server.address)/faults/busy:v1")
        _ = try makeRegistry().push(containerAt: Experts.path("lora-bert-seqcls"), to: ref)
        let proxy = try FaultProxy(upstream: server.port, rule: "status:GET /v2/faults/busy/manifests/v1:503")
        defer { proxy.stop() }
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try makeRegistry(plainHTTP: true).pull(try Reference(parsing: "\(proxy.address)/faults/busy:v1"), to: out)
        #expect(try contents(out) == contents(Experts.path("lora-bert-seqcls")))
        #expect(proxy.log.filter { $0.hasPrefix("REQ") && $0.contains("/manifests/v1") }.count == 2, "\(proxy.log)")
        // With no retries left the 503 is the error, naming the reference.
        let again = try FaultProxy(upstream: server.port, rule: "status:GET /v2/faults/busy/manifests/v1:503")
        defer { again.stop() }
        let e = try #require(throws: ExchangeError.self) {
            try makeRegistry(plainHTTP: true, attempts: 1).pull(try Reference(parsing: "\(again.address)/faults/busy:v1"), to: out + "2")
        }
        #expect(e.code == .network)
        #expect(e.description.contains("503"), "\(e)")
    }

    /// A registry that sends blob reads elsewhere (blob storage, a CDN: another host and port) with a
    /// redirect: the pull and a lazy one-tensor range read follow it and get the same bytes.
    @Test(arguments: [307, 302])
    func blobRedirectsAreFollowed(status: Int) throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = Experts.path("lora-bert-seqcls")
        let pushed = try makeRegistry().push(containerAt: path, to: try Reference(parsing: "\(server.address)/faults/moved:v1"))
        let blob = "GET /v2/faults/moved/blobs/\(pushed.layer.digest)"
        let proxy = try FaultProxy(upstream: server.port, rule: "redirect:\(blob):\(status)")
        defer { proxy.stop() }
        let ref = try Reference(parsing: "\(proxy.address)/faults/moved:v1")
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try makeRegistry(cache: false, plainHTTP: true).pull(ref, to: out)
        #expect(proxy.log.contains("FIRED redirect:\(blob):\(status)"), "\(proxy.log)")
        #expect(try contents(out) == contents(path))

        let again = try FaultProxy(upstream: server.port, rule: "redirect:\(blob):\(status)")
        defer { again.stop() }
        let (lazy, _) = try makeRegistry(cache: false, plainHTTP: true).open(try Reference(parsing: "\(again.address)/faults/moved:v1"))
        let whole = try ContainerReader(path: path)
        for t in whole.index.tensors {
            try lazy.verify(lazy.tensor(named: t.name)!)
        }
        #expect(again.log.contains { $0.hasPrefix("FIRED") }, "the range read was redirected: \(again.log)")
    }

    /// Ctrl-C while the container is downloading: the process ends by SIGINT, no output file, no temporary file; the partial
    /// download stays in the cache and the next pull resumes it.
    @Test func interruptLeavesNoOutputAndTheNextPullResumes() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 300_000, density: 20, seed: 23)
        let ref = try Reference(parsing: "\(server.address)/faults/ctrlc:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let proxy = try FaultProxy(upstream: server.port, rule: "stall:GET /v2/faults/ctrlc/blobs/\(pushed.layer.digest):30000")
        defer { proxy.stop() }
        let cache = scratchDirectory("cache")
        let outDir = scratchDirectory("out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["pull", "\(proxy.address)/faults/ctrlc:v1", "-o", outDir + "/x.cpeft", "--plain-http", "--cache", cache]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        #expect(proxy.waitUntilFired(), "the download started and stalled")
        // The stalled pull holds a temporary output file beside the destination.
        Thread.sleep(forTimeInterval: 0.3)
        kill(p.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        // Ended by the signal, as every command is (a shell reports 130), after removing what it had begun.
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGINT, "exit \(p.terminationStatus): \(stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outDir).isEmpty, "no output and no temporary file")
        let partial = cache + "/blobs/sha256/\(pushed.layer.digest.hex).partial"
        let kept = (try FileManager.default.attributesOfItem(atPath: partial)[.size] as? NSNumber)?.intValue ?? 0
        #expect(kept == 30000, "the partial download keeps what arrived (\(kept) bytes)")

        let r = CLI.run(["pull", ref.description, "-o", outDir + "/x.cpeft", "--cache", cache, "--json"])
        #expect(r.status == 0, "\(r.output)")
        let report = try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]
        #expect(report?["resumed_from"] as? Int == 30000)
        #expect(try contents(outDir + "/x.cpeft") == contents(path))
    }
}
