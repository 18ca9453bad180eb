public import Foundation

extension RegistryClient {
    /// What an upload did: whether the blob was already there (nothing sent), and the bytes sent.
    public struct UploadResult: Sendable {
        public var existed: Bool
        public var bytesSent: Int
    }

    /// Uploads a blob unless the registry already has it (HEAD first, so pushing the same expert twice
    /// sends nothing).
    ///
    /// Blobs up to ``Options/chunkSize`` go up monolithically (`POST` then one `PUT` with the body);
    /// larger ones as a chunked upload (`PATCH` with `Content-Range`, then `PUT ?digest=`). A chunk that
    /// fails is resumed from the offset the registry reports for the upload session (`GET` on its
    /// location), and an upload session the registry lost is started again.
    ///
    /// - Parameters:
    ///   - read: the blob's bytes at an offset and count (a file read with `pread`).
    ///   - progress: bytes the registry has acknowledged.
    public func uploadBlob(repository: String, digest: Digest, size: Int, read: (Int, Int) throws -> Data,
                           progress: (Int) -> Void = { _ in }) throws -> UploadResult {
        let subject = "\(registry)/\(repository)@\(digest)"
        if let existing = try blobSize(repository: repository, digest: digest) {
            guard existing == size else {
                throw ExchangeError(.integrity, subject, "the registry holds blob \(digest) with \(existing) bytes, not \(size)")
            }
            progress(size)
            return UploadResult(existed: true, bytesSent: 0)
        }
        let scope = Scope(repository: repository, push: true)
        var sent = 0
        var restarts = 0
        restart: while true {
            let start = try send("POST", "/v2/\(repository)/blobs/uploads/", scope: scope, subject: subject)
            guard start.status == 202, var location = start.location else {
                throw Self.failure(start, "POST blob upload", subject: subject)
            }
            if size <= options.chunkSize {
                let body = try read(0, size)
                let put = try send("PUT", Self.appending(digest: digest, to: location), headers: ["Content-Type": "application/octet-stream"],
                                   body: body, scope: scope, subject: subject)
                sent += size
                guard put.status == 201 else { throw Self.failure(put, "PUT blob", subject: subject) }
                progress(size)
                return UploadResult(existed: false, bytesSent: sent)
            }
            var offset = 0
            var failures = 0
            while offset < size {
                let count = min(options.chunkSize, size - offset)
                let chunk = try read(offset, count)
                do {
                    let r = try send("PATCH", location.absoluteString,
                                     headers: ["Content-Type": "application/octet-stream", "Content-Range": "\(offset)-\(offset + count - 1)"],
                                     body: chunk, scope: scope, subject: subject, retry: false)
                    sent += count
                    guard r.status == 202 else {
                        if r.status == 404 || r.status == 416 { throw Self.failure(r, "PATCH blob chunk", subject: subject) }
                        throw ExchangeError(.network, subject, "PATCH blob chunk at \(offset): \(r.status)\(Self.suffix(r))")
                    }
                    if let next = r.location { location = next }
                    offset += count
                    failures = 0
                    progress(offset)
                } catch let error as ExchangeError where error.code == .network {
                    failures += 1
                    guard failures < options.attempts else { throw error }
                    log("\(error.description); asking the registry where the upload stands")
                    try pause(options.backoff * Double(1 << min(failures - 1, 6)), subject: subject)
                    // Where does the session stand? 204 with Range: 0-N means N+1 bytes are stored.
                    let status: HTTPResponse
                    do {
                        status = try send("GET", location.absoluteString, scope: scope, subject: subject)
                    } catch let e as ExchangeError where e.code == .network {
                        continue
                    }
                    if status.status == 404 {
                        restarts += 1
                        guard restarts < options.attempts else { throw Self.failure(status, "upload session lost", subject: subject) }
                        log("\(subject): the registry lost the upload session; starting again")
                        continue restart
                    }
                    guard status.status == 204 else { throw Self.failure(status, "GET upload status", subject: subject) }
                    if let next = status.location { location = next }
                    offset = Self.uploadedBytes(status.header("range"))
                    guard offset <= size else {
                        throw ExchangeError(.protocolViolation, subject, "the registry holds \(offset) bytes of a \(size)-byte upload")
                    }
                }
            }
            let put = try send("PUT", Self.appending(digest: digest, to: location), scope: scope, subject: subject)
            guard put.status == 201 else {
                if put.status == 400 {
                    throw ExchangeError(.integrity, subject, "the registry refused the upload: it does not hash to \(digest)\(Self.suffix(put))")
                }
                throw Self.failure(put, "PUT blob", subject: subject)
            }
            return UploadResult(existed: false, bytesSent: sent)
        }
    }

    /// Bytes an upload session holds, from its `Range: 0-N` header: N + 1, or 0 when the header is absent
    /// or `0-0` (distribution writes `0-0` for an empty session; a session of one byte, which a chunked
    /// upload never leaves, is then sent again and refused, which fails the push rather than corrupting it).
    static func uploadedBytes(_ range: String?) -> Int {
        guard let range, let dash = range.firstIndex(of: "-"), let end = Int(range[range.index(after: dash)...]), end > 0 else { return 0 }
        return end + 1
    }

    /// The upload location with `digest=` added to its query.
    static func appending(digest: Digest, to location: URL) -> String {
        var c = URLComponents(url: location, resolvingAgainstBaseURL: true)!
        var items = c.queryItems ?? []
        items.append(URLQueryItem(name: "digest", value: digest.description))
        c.queryItems = items
        // ':' is legal in a query; '+' would not be, and a digest has none.
        return c.url!.absoluteString
    }
}
