import Foundation
public import TaskVector

/// A blob on a registry read by byte ranges (HTTP `Range`), so that a ``ContainerReader`` opened on it
/// fetches only what it reads: the trailer and index on open, then one tensor's payload per decode.
///
/// The first read that touches the blob's last ``tailWindow`` bytes fetches all of them and keeps them,
/// so opening a container costs two range requests (the 16-byte preamble and the tail) when the index
/// fits in the window. Other ranges are fetched as asked and not kept.
///
/// Range reads are not checked against the blob's digest (a range is not the blob); the container's own
/// checksums protect them: the trailer's XXH64 over preamble and trailer, the index's XXH64, and each
/// payload's XXH64, which ``ContainerReader`` checks before it decodes anything.
public final class RemoteBlobSource: ByteSource, @unchecked Sendable {
    public let name: String
    public let size: Int
    public let repository: String
    public let digest: Digest
    /// Bytes at the end of the blob fetched together on first use.
    public let tailWindow: Int
    private let client: RegistryClient
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var tail: (start: Int, bytes: [UInt8])?
    private var fetched = 0
    private var requests = 0

    public init(client: RegistryClient, repository: String, digest: Digest, size: Int, name: String, tailWindow: Int = 64 << 10) {
        self.client = client
        self.repository = repository
        self.digest = digest
        self.size = size
        self.name = name
        self.tailWindow = tailWindow
    }

    /// Blob bytes fetched from the registry so far, and in how many range requests.
    public var fetchedBytes: (bytes: Int, requests: Int) { lock.withLock { (fetched, requests) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        guard offset >= 0, offset <= size, buffer.count <= size - offset else {
            throw TaskVectorError(.io, file: name, "bytes \(offset)..<\(offset + buffer.count) lie outside its \(size) bytes")
        }
        if buffer.isEmpty { return }
        let end = offset + buffer.count
        let tailStart = max(0, size - tailWindow)
        if end > tailStart && offset >= tailStart {
            let t: (start: Int, bytes: [UInt8])
            if let cached = lock.withLock({ tail }) {
                t = cached
            } else {
                t = (tailStart, try fetch(tailStart..<size))
                lock.withLock { tail = t }
            }
            t.bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[(offset - t.start)..<(end - t.start)])) }
            return
        }
        let bytes = try fetch(offset..<end)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    private func fetch(_ range: Range<Int>) throws -> [UInt8] {
        do {
            let bytes = try client.blobRange(repository: repository, digest: digest, range, subject: name)
            lock.withLock {
                fetched += bytes.count
                requests += 1
            }
            return bytes
        } catch let e as ExchangeError {
            throw TaskVectorError(.io, file: name, e.message)
        }
    }
}
