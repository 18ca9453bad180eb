public import AdapterFormat
public import Foundation
public import TaskVector
#if canImport(Glibc)
import Glibc
#endif

extension ExpertRegistry {
    /// What a pull did.
    public struct PullReport: Sendable {
        public var resolved: ResolvedExpert
        /// Container bytes received from the registry by this call (0 when the cache had the blob).
        public var downloadedBytes: Int
        /// Bytes of an earlier, interrupted download that were kept and resumed from.
        public var resumedFrom: Int
        /// Whether the container came from the cache.
        public var fromCache: Bool
    }

    /// Pulls `ref`'s container to `path`, byte for byte: it is downloaded into the cache (resuming an
    /// earlier partial download with `Range`), checked against its digest, opened as a container, and
    /// only then written to a temporary file beside `path` and renamed into place.
    ///
    /// - Parameter progress: container bytes held so far, and its size.
    /// - Throws: ``ExchangeError``; `.integrity` naming the digest for a corrupt blob; ``TaskVectorError``
    ///   when the output cannot be written or exists without `overwrite`.
    public func pull(_ ref: Reference, to path: String, overwrite: Bool = false, verifyingKey: VerifyingKey? = nil,
                     progress: @escaping (Int, Int) -> Void = { _, _ in }) throws -> PullReport {
        try reporting(ref) { try pullUnreported(ref, to: path, overwrite: overwrite, verifyingKey: verifyingKey, progress: progress) }
    }

    private func pullUnreported(_ ref: Reference, to path: String, overwrite: Bool, verifyingKey: VerifyingKey?,
                                progress: @escaping (Int, Int) -> Void) throws -> PullReport {
        let resolved = try resolve(ref, verifyingKey: verifyingKey)
        let writer = try AtomicFileWriter(path: path, overwrite: overwrite)
        let fetched = try fetch(resolved, progress: progress)
        defer { fetched.cleanup() }
        let source = try FileByteSource(path: fetched.path)
        _ = try ContainerReader(source: NamedByteSource(base: source, name: ref.description))
        var buffer = [UInt8](repeating: 0, count: min(max(source.size, 1), 4 << 20))
        var offset = 0
        while offset < source.size {
            let n = min(buffer.count, source.size - offset)
            try buffer.withUnsafeMutableBytes { b in
                let part = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                try source.read(into: part, at: offset)
                try writer.write(UnsafeRawBufferPointer(part))
            }
            offset += n
        }
        try writer.commit()
        return PullReport(resolved: resolved, downloadedBytes: fetched.downloaded, resumedFrom: fetched.resumedFrom,
                          fromCache: fetched.downloaded == 0 && fetched.resumedFrom == 0)
    }

    /// A container blob on local disk, verified against its digest.
    public struct FetchedBlob: Sendable {
        public var path: String
        public var downloaded: Int
        public var resumedFrom: Int
        /// Removes a temporary copy (when there is no cache).
        let temporaryRoot: String?
        public func cleanup() {
            if let temporaryRoot { try? FileManager.default.removeItem(atPath: temporaryRoot) }
        }
    }

    /// Makes sure the cache holds the expert's container, downloading what is missing.
    ///
    /// A partial download left by an interrupted pull is resumed from its last byte. The whole blob is
    /// checked against its digest before it is renamed into the cache; a mismatch deletes it and fails
    /// naming the digest. Without a cache the blob goes to a temporary folder that ``FetchedBlob/cleanup()``
    /// removes.
    public func fetch(_ resolved: ResolvedExpert, progress: @escaping (Int, Int) -> Void = { _, _ in }) throws -> FetchedBlob {
        let layer = resolved.layer
        let subject = resolved.reference.description
        var temporaryRoot: String?
        let cache: BlobCache
        if let c = self.cache {
            cache = c
        } else {
            let root = NSTemporaryDirectory() + "/compeft-pull-\(getpid())-\(UUID().uuidString)"
            temporaryRoot = root
            cache = BlobCache(root: root)
        }
        if let p = cache.lookup(layer.digest, size: layer.size) {
            progress(layer.size, layer.size)
            return FetchedBlob(path: p, downloaded: 0, resumedFrom: 0, temporaryRoot: temporaryRoot)
        }
        try cache.prepare()
        let partial = cache.partialPath(of: layer.digest)
        let fd = Glibc.open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ExchangeError(.io, partial, "cannot open: \(String(cString: strerror(errno)))") }
        let file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        // One downloader per blob: another process pulling the same digest waits here, then finds it cached.
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        if let p = cache.lookup(layer.digest, size: layer.size) {
            return FetchedBlob(path: p, downloaded: 0, resumedFrom: 0, temporaryRoot: temporaryRoot)
        }
        // Hash what an earlier download left, to continue from it.
        var hasher = DigestHasher()
        var have = Int(lseek(fd, 0, SEEK_END))
        if have > layer.size {
            try file.truncate(atOffset: 0)
            have = 0
        }
        if have > 0 {
            try hasher.update(reading: FileByteSource(path: partial), count: have)
        }
        try file.seek(toOffset: UInt64(have))
        let client = client(for: resolved.reference.registry)
        let before = transport.counters.bytesReceived
        let digest = try client.download(repository: resolved.reference.repository, digest: layer.digest, size: layer.size, to: file,
                                         offset: have, hasher: hasher, subject: subject, progress: { progress($0, layer.size) })
        let downloaded = transport.counters.bytesReceived - before
        guard digest == layer.digest else {
            try? file.truncate(atOffset: 0)
            unlink(partial)
            throw ExchangeError(.integrity, subject, "blob \(layer.digest) is corrupt: its \(layer.size) bytes hash to \(digest); nothing was written")
        }
        guard fsync(fd) == 0, rename(partial, cache.path(of: layer.digest)) == 0 else {
            throw ExchangeError(.io, partial, "cannot move the downloaded blob into the cache: \(String(cString: strerror(errno)))")
        }
        return FetchedBlob(path: cache.path(of: layer.digest), downloaded: downloaded, resumedFrom: have, temporaryRoot: temporaryRoot)
    }
}
