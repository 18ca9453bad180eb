import AdapterFormat
import Exchange
import Foundation
import TaskVector
import Testing

/// Push, pull, lazy reads, dedup, corruption and crashes against a real registry (distribution 2.8).
@Suite(.serialized) struct RegistryTests {
    @Test func everyFixtureRoundTripsByteForByte() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let registry = makeRegistry()
        for (name, path) in Experts.all {
            let repo = name.lowercased().replacingOccurrences(of: ".", with: "-")
            let ref = try Reference(parsing: "\(server.address)/experts/\(repo):v1")
            let pushed = try registry.push(containerAt: path, to: ref)
            #expect(pushed.layer.size == (try contents(path)).count, "\(name)")
            let out = scratchDirectory("pull") + "/out.cpeft"
            let pulled = try registry.pull(ref, to: out)
            #expect(try contents(out) == contents(path), "\(name): pulled bytes differ")
            #expect(pulled.resolved.manifestDigest == pushed.manifestDigest)
            #expect(pulled.resolved.config.counts.tensors == (try ContainerReader(path: path)).index.tensors.count)
            // By digest too.
            let byDigest = scratchDirectory("pull") + "/d.cpeft"
            _ = try registry.pull(pushed.reference, to: byDigest)
            #expect(try contents(byDigest) == contents(path))
        }
        #expect(registry.client(for: server.address).usesPlainHTTP, "a loopback registry without TLS falls back to HTTP")
    }

    @Test func secondPushUploadsNothing() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let registry = makeRegistry()
        let path = Experts.path("lora-bert-seqcls")
        let ref = try Reference(parsing: "\(server.address)/experts/dedup:v1")
        let first = try registry.push(containerAt: path, to: ref)
        #expect(first.uploadedBytes > (try contents(path)).count)
        let before = registry.transport.counters
        let second = try registry.push(containerAt: path, to: ref)
        let sent = registry.transport.counters.bytesSent - before.bytesSent
        #expect(second.uploadedBytes == 0)
        #expect(second.layerExisted)
        #expect(sent == 0, "the second push sent \(sent) body bytes")
        #expect(second.manifestDigest == first.manifestDigest, "the tag keeps its manifest")
        // Another tag of the same expert: blobs are not sent again either, only the manifest.
        let other = try registry.push(containerAt: path, to: ref.with(tag: "v2"))
        #expect(other.uploadedBytes == 0)
    }

    @Test func lazyDecodeOfOneTensorFetchesOnlyItsRange() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 500_000, tensors: 4, density: 30, seed: 7)
        let local = try ContainerReader(path: path)
        let ref = try Reference(parsing: "\(server.address)/experts/lazy:v1")
        _ = try makeRegistry().push(containerAt: path, to: ref)

        let registry = makeRegistry(cache: false)
        let (reader, resolved) = try registry.open(ref)
        let source = try #require(reader.source as? RemoteBlobSource)
        let size = resolved.layer.size
        let afterOpen = source.fetchedBytes
        // The preamble, then the tail window holding trailer and index.
        #expect(afterOpen.requests == 2)
        #expect(afterOpen.bytes == 16 + min(size, source.tailWindow))
        let t = try #require(reader.tensor(named: "w1"))
        #expect(t.offset + t.length <= size - source.tailWindow, "the payload lies outside the tail window")
        var remote = [Float](repeating: 0, count: t.count)
        try remote.withUnsafeMutableBufferPointer { try reader.decodeValues(t, base: nil, into: $0) }
        let afterDecode = source.fetchedBytes
        #expect(afterDecode.requests == 3)
        #expect(afterDecode.bytes - afterOpen.bytes == t.length, "one decode fetched \(afterDecode.bytes - afterOpen.bytes) bytes; its payload has \(t.length)")
        var expected = [Float](repeating: 0, count: t.count)
        try expected.withUnsafeMutableBufferPointer { try local.decodeValues(t, base: nil, into: $0) }
        #expect(remote == expected)
        // Bytes on the wire: the blob ranges plus the manifest and config, far less than the container.
        let wire = registry.transport.counters.bytesReceived
        #expect(wire < size / 2, "received \(wire) bytes for a \(size)-byte container")
        print("lazy: container \(size) B; open fetched \(afterOpen.bytes) B in \(afterOpen.requests) ranges; one tensor of \(t.length) B; \(wire) B received in all")
    }

    @Test func corruptBlobInStorageIsRefusedNamingItsDigest() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = Experts.path("lora-bert-seqcls")
        let ref = try Reference(parsing: "\(server.address)/experts/corrupt:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let file = server.blobFile(pushed.layer.digest.hex)
        var bytes = try contents(file)
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: file))

        let registry = makeRegistry()
        let out = scratchDirectory("pull") + "/x.cpeft"
        let error = try #require(throws: ExchangeError.self) { try registry.pull(ref, to: out) }
        #expect(error.code == .integrity)
        #expect(error.description.contains(pushed.layer.digest.description), "\(error)")
        #expect(error.description.contains(ref.description), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent).isEmpty, "no temporary file left")
        #expect(registry.cache!.lookup(pushed.layer.digest, size: pushed.layer.size) == nil, "nothing corrupt is cached")
    }

    @Test func registryKilledDuringPushLeavesNoTagAndARetrySucceeds() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 600_000, density: 30, seed: 11)
        let size = try contents(path).count
        let ref = try Reference(parsing: "\(server.address)/experts/crash:v1")
        let registry = makeRegistry(chunkSize: 32 << 10, attempts: 2)
        var killedAt = 0
        let error = try #require(throws: ExchangeError.self) {
            try registry.push(containerAt: path, to: ref) { done, total in
                if killedAt == 0 && done >= total / 3 {
                    killedAt = done
                    server.kill()
                }
            }
        }
        #expect(killedAt > 0 && killedAt < size, "the registry was killed mid-upload (at \(killedAt) of \(size))")
        #expect(error.code == .network, "\(error)")
        try server.start()
        let fresh = makeRegistry()
        #expect(try !fresh.client(for: server.address).manifestExists(ref), "no tag appeared")
        let pushed = try fresh.push(containerAt: path, to: ref)
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try fresh.pull(ref, to: out)
        #expect(try contents(out) == contents(path))
        #expect(pushed.layer.size == size)
    }

    @Test func chunkedUploadMatchesMonolithic() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 200_000, density: 20, seed: 3)
        let ref = try Reference(parsing: "\(server.address)/experts/chunked:v1")
        let registry = makeRegistry(chunkSize: 10_000)
        let pushed = try registry.push(containerAt: path, to: ref)
        #expect(registry.transport.counters.requests > pushed.layer.size / 10_000, "the upload went up in chunks")
        let out = scratchDirectory("pull") + "/x.cpeft"
        _ = try makeRegistry().pull(ref, to: out)
        #expect(try contents(out) == contents(path))
    }

    @Test func pullResumesAPartialDownloadWithRange() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let path = try Experts.large(count: 300_000, density: 20, seed: 5)
        let bytes = try contents(path)
        let ref = try Reference(parsing: "\(server.address)/experts/resume:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let registry = makeRegistry()
        let cache = registry.cache!
        try FileManager.default.createDirectory(atPath: cache.root + "/blobs/sha256", withIntermediateDirectories: true)
        let kept = bytes.count / 3
        try bytes[0..<kept].write(to: URL(fileURLWithPath: cache.path(of: pushed.layer.digest) + ".partial"))
        let out = scratchDirectory("pull") + "/x.cpeft"
        let report = try registry.pull(ref, to: out)
        #expect(report.resumedFrom == kept)
        #expect(report.downloadedBytes == bytes.count - kept, "downloaded \(report.downloadedBytes) bytes")
        #expect(try contents(out) == bytes)

        // A partial download with wrong bytes fails the digest check and is thrown away, not trusted.
        let other = makeRegistry()
        try FileManager.default.createDirectory(atPath: other.cache!.root + "/blobs/sha256", withIntermediateDirectories: true)
        var wrong = Data(bytes[0..<kept])
        wrong[10] ^= 0xFF
        let partial = other.cache!.path(of: pushed.layer.digest) + ".partial"
        try wrong.write(to: URL(fileURLWithPath: partial))
        let error = try #require(throws: ExchangeError.self) { try other.pull(ref, to: scratchDirectory("pull") + "/y.cpeft") }
        #expect(error.code == .integrity)
        #expect(!FileManager.default.fileExists(atPath: partial))
        _ = try other.pull(ref, to: scratchDirectory("pull") + "/z.cpeft")
    }

    @Test func tagsAreListedAcrossPages() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let registry = makeRegistry()
        let path = Experts.path("ia3-gpt2-f16")
        let names = ["a", "b", "c", "d", "e", "v1.0", "v1.1"]
        for n in names { _ = try registry.push(containerAt: path, to: try Reference(parsing: "\(server.address)/experts/paged:\(n)")) }
        let client = registry.client(for: server.address)
        let before = registry.transport.counters.requests
        // distribution 2.8 returns every tag at once, in no order, whatever `n` asks for.
        let tags = try client.tags(repository: "experts/paged", pageSize: 2)
        #expect(tags.sorted() == names)
        _ = before
        // Its catalog does paginate (Link: <…?last=…&n=2>; rel="next"): the same loop follows it to the end.
        for n in ["b", "c", "d", "e"] { _ = try registry.push(containerAt: path, to: try Reference(parsing: "\(server.address)/more/\(n):v1")) }
        let pagesBefore = registry.transport.counters.requests
        let repos = try client.repositories(pageSize: 2)
        #expect(repos == ["experts/paged", "more/b", "more/c", "more/d", "more/e"])
        #expect(registry.transport.counters.requests - pagesBefore == 3, "three pages of at most two")
        let missing = try #require(throws: ExchangeError.self) { try client.tags(repository: "experts/none") }
        #expect(missing.code == .notFound)
    }

    @Test func missingTagAndForeignArtifactsAreClearErrors() throws {
        let server = try RegistryServer()
        defer { server.stop() }
        let registry = makeRegistry()
        let ref = try Reference(parsing: "\(server.address)/experts/x:nope")
        let e = try #require(throws: ExchangeError.self) { try registry.pull(ref, to: scratchDirectory("p") + "/x.cpeft") }
        #expect(e.code == .notFound)
        #expect(e.description.hasPrefix(ref.description + ": "), "\(e)")
        // A plain OCI image (not compeft) is refused by type.
        let client = registry.client(for: server.address)
        let config = Data("{}".utf8)
        _ = try client.uploadBlob(repository: "experts/x", digest: Digest.of(config), size: 2, read: { _, _ in config })
        let image = ImageManifest(artifactType: "application/vnd.example.thing", config: Descriptor(mediaType: "application/vnd.oci.image.config.v1+json", digest: Digest.of(config), size: 2), layers: [], annotations: nil)
        try client.putManifest(image.encoded(), mediaType: MediaType.imageManifest, to: ref.with(tag: "image"))
        let foreign = try #require(throws: ExchangeError.self) { try registry.resolve(ref.with(tag: "image")) }
        #expect(foreign.code == .integrity)
        #expect(foreign.description.contains("not a compeft expert"), "\(foreign)")
    }
}
