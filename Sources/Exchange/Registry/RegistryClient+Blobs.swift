public import Foundation

extension RegistryClient {
    /// The size of a blob the registry holds, or nil when it holds none (HEAD).
    public func blobSize(repository: String, digest: Digest) throws -> Int? {
        let subject = "\(registry)/\(repository)@\(digest)"
        let r = try send("HEAD", "/v2/\(repository)/blobs/\(digest)", scope: Scope(repository: repository, push: false), subject: subject)
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw Self.failure(r, "HEAD blob", subject: subject) }
        return r.header("content-length").flatMap(Int.init)
    }

    /// Fetches a small blob whole (a config, a signature payload) and checks it against its digest.
    ///
    /// - Throws: ``ExchangeError`` (`.integrity`) naming the digest when the bytes do not match it.
    public func blob(repository: String, digest: Digest, maxSize: Int = 16 << 20) throws -> Data {
        let subject = "\(registry)/\(repository)@\(digest)"
        let r = try send("GET", "/v2/\(repository)/blobs/\(digest)", scope: Scope(repository: repository, push: false),
                         subject: subject, maxBody: maxSize)
        guard r.status == 200 else { throw Self.failure(r, "GET blob", subject: subject) }
        let got = Digest.of(r.body)
        guard got == digest else {
            throw ExchangeError(.integrity, subject, "blob \(digest) is corrupt: its bytes hash to \(got)")
        }
        return r.body
    }

    /// Fetches bytes `range` of a blob with an HTTP `Range` request (`206`; a `200` with the whole blob is
    /// cut to the range).
    ///
    /// The bytes are not checked here: a range is not its blob's digest. The caller checks them (the
    /// container's checksums).
    public func blobRange(repository: String, digest: Digest, _ range: Range<Int>, subject: String) throws -> [UInt8] {
        guard !range.isEmpty else { return [] }
        let r = try send("GET", "/v2/\(repository)/blobs/\(digest)", headers: ["Range": "bytes=\(range.lowerBound)-\(range.upperBound - 1)"],
                         scope: Scope(repository: repository, push: false), subject: subject, maxBody: max(range.upperBound, 1 << 16))
        switch r.status {
        case 206:
            guard let cr = r.header("content-range"), cr.hasPrefix("bytes \(range.lowerBound)-\(range.upperBound - 1)/"),
                  r.body.count == range.count else {
                throw ExchangeError(.protocolViolation, subject, "asked for bytes \(range.lowerBound)-\(range.upperBound - 1) of \(digest), got '\(r.header("content-range") ?? "no Content-Range")' with \(r.body.count) bytes")
            }
            return [UInt8](r.body)
        case 200:
            guard r.body.count >= range.upperBound else {
                throw ExchangeError(.protocolViolation, subject, "blob \(digest) has \(r.body.count) bytes, fewer than \(range.upperBound)")
            }
            return [UInt8](r.body[range])
        default:
            throw Self.failure(r, "GET blob range", subject: subject)
        }
    }

    /// Downloads a blob into `file` from byte `offset` (what `file` already holds of it), resuming with
    /// `Range` after a dropped connection, and returns the digest of the whole blob as received.
    ///
    /// - Parameters:
    ///   - hasher: the hash of the bytes `file` already holds (`offset` of them).
    ///   - progress: bytes held so far, after every piece.
    /// - Throws: ``ExchangeError``; the caller compares the returned digest with the one asked for.
    func download(repository: String, digest: Digest, size: Int, to file: FileHandle, offset: Int, hasher: DigestHasher,
                  subject: String, progress: @escaping (Int) -> Void) throws -> Digest {
        final class State: @unchecked Sendable {
            var done: Int
            var hasher: DigestHasher
            var head: HTTPResponse?
            var checkedHead = false
            init(done: Int, hasher: DigestHasher) {
                self.done = done
                self.hasher = hasher
            }
        }
        let state = State(done: offset, hasher: hasher)
        if offset >= size { return state.hasher.finalize() }
        var tries = 0
        while true {
            tries += 1
            state.checkedHead = false
            state.head = nil
            let start = state.done
            do {
                let r = try send("GET", "/v2/\(repository)/blobs/\(digest)", headers: start > 0 ? ["Range": "bytes=\(start)-"] : [:],
                                 scope: Scope(repository: repository, push: false), subject: subject, retry: false,
                                 stream: { bytes in
                                     if !state.checkedHead {
                                         state.checkedHead = true
                                         if state.head?.status == 200 && state.done > 0 {
                                             // The server ignored Range: start over.
                                             try file.truncate(atOffset: 0)
                                             state.done = 0
                                             state.hasher = DigestHasher()
                                         }
                                     }
                                     guard state.done + bytes.count <= size else {
                                         throw ExchangeError(.integrity, subject, "blob \(digest) is longer than the \(size) bytes its descriptor states")
                                     }
                                     try file.write(contentsOf: bytes)
                                     state.hasher.update(bytes)
                                     state.done += bytes.count
                                     progress(state.done)
                                 },
                                 onHead: { head in state.head = head })
                guard r.status == 200 || r.status == 206 else { throw Self.failure(r, "GET blob", subject: subject) }
                if r.status == 206, let cr = r.header("content-range"), !cr.hasPrefix("bytes \(start)-") {
                    throw ExchangeError(.protocolViolation, subject, "asked for blob bytes from \(start), got '\(cr)'")
                }
                guard state.done == size else {
                    throw ExchangeError(.network, subject, "blob \(digest) ended after \(state.done) of \(size) bytes")
                }
                return state.hasher.finalize()
            } catch var error as ExchangeError where error.code == .network {
                // Progress since the last failure earns fresh tries; resume from the last byte received.
                if state.done > start { tries = 1 }
                guard tries < options.attempts else {
                    error.message += " (after \(tries) tries)"
                    throw error
                }
                let delay = options.backoff * Double(1 << min(tries - 1, 6))
                log("\(error.description); resuming at byte \(state.done) in \(String(format: "%.2g", delay)) s")
                try pause(delay, subject: subject)
            }
        }
    }
}
