public import Foundation

extension RegistryClient {
    /// A manifest as the registry serves it: its bytes, its media type and the digest of the bytes.
    public struct FetchedManifest: Sendable {
        public var bytes: Data
        public var mediaType: String
        public var digest: Digest
    }

    /// The media types compeft asks for: OCI manifests, and the OCI index for a helpful error.
    static let manifestAccept = [MediaType.imageManifest, MediaType.imageIndex, "application/vnd.docker.distribution.manifest.v2+json"]
        .joined(separator: ", ")

    /// Fetches a manifest by tag or digest and checks it: the bytes must hash to the digest asked for
    /// (or, for a tag, to the `Docker-Content-Digest` the registry states, when it states one).
    ///
    /// - Throws: ``ExchangeError``: `.notFound` when there is no such manifest, `.integrity` when the bytes
    ///   do not match their digest.
    public func manifest(_ ref: Reference) throws -> FetchedManifest {
        let subject = ref.description
        let r = try send("GET", "/v2/\(ref.repository)/manifests/\(ref.manifestReference)", headers: ["Accept": Self.manifestAccept],
                         scope: Scope(repository: ref.repository, push: false), subject: subject, maxBody: 4 << 20)
        guard r.status == 200 else {
            if r.status == 404 { throw ExchangeError(.notFound, subject, "no such manifest in \(ref.repositoryName)" + Self.suffix(r)) }
            throw Self.failure(r, "GET manifest", subject: subject)
        }
        let digest = Digest.of(r.body)
        if let want = ref.digest, want != digest {
            throw ExchangeError(.integrity, subject, "the registry's manifest hashes to \(digest), not to the digest asked for")
        }
        if let stated = r.header("docker-content-digest").flatMap(Digest.init), stated != digest {
            throw ExchangeError(.integrity, subject, "the manifest hashes to \(digest), but the registry says \(stated)")
        }
        let type = r.header("content-type")?.split(separator: ";").first.map { String($0).trimmingSpaces } ?? ""
        return FetchedManifest(bytes: r.body, mediaType: type, digest: digest)
    }

    /// Whether a manifest exists under a tag or digest (HEAD).
    public func manifestExists(_ ref: Reference) throws -> Bool {
        let r = try send("HEAD", "/v2/\(ref.repository)/manifests/\(ref.manifestReference)", headers: ["Accept": Self.manifestAccept],
                         scope: Scope(repository: ref.repository, push: false), subject: ref.description)
        if r.status == 404 { return false }
        guard r.status == 200 else { throw Self.failure(r, "HEAD manifest", subject: ref.description) }
        return true
    }

    /// Uploads a manifest under `ref`'s tag (or digest) and returns its digest.
    ///
    /// - Throws: ``ExchangeError``; `.integrity` when the registry states another digest for the bytes.
    @discardableResult
    public func putManifest(_ bytes: Data, mediaType: String, to ref: Reference) throws -> Digest {
        let subject = ref.description
        let digest = Digest.of(bytes)
        let r = try send("PUT", "/v2/\(ref.repository)/manifests/\(ref.manifestReference)", headers: ["Content-Type": mediaType],
                         body: bytes, scope: Scope(repository: ref.repository, push: true), subject: subject)
        guard r.status == 201 || r.status == 200 else { throw Self.failure(r, "PUT manifest", subject: subject) }
        if let stated = r.header("docker-content-digest").flatMap(Digest.init), stated != digest {
            throw ExchangeError(.integrity, subject, "the registry stored the manifest as \(stated), but its bytes hash to \(digest)")
        }
        return digest
    }

    /// Every tag of a repository, in the registry's order (lexical for distribution), following the
    /// pagination `Link: <…>; rel="next"` headers.
    ///
    /// - Parameter pageSize: tags asked for per request (`n`).
    public func tags(repository: String, pageSize: Int = 1000) throws -> [String] {
        try paginated("/v2/\(repository)/tags/list?n=\(pageSize)", key: "tags", scope: Scope(repository: repository, push: false),
                      subject: registry + "/" + repository)
    }

    /// Every repository of the registry (`/v2/_catalog`), following pagination as ``tags(repository:pageSize:)`` does.
    /// Registries may refuse it (Docker Hub, GHCR) or list only what the credentials may see.
    public func repositories(pageSize: Int = 1000) throws -> [String] {
        try paginated("/v2/_catalog?n=\(pageSize)", key: "repositories", scope: Scope(repository: "", push: false), subject: registry)
    }

    /// The string list under `key` of every page, from `target` along `Link: <…>; rel="next"`.
    private func paginated(_ target: String, key: String, scope: Scope, subject: String) throws -> [String] {
        var target = target
        var all: [String] = []
        for _ in 0..<100_000 {
            let r = try send("GET", target, scope: scope, subject: subject, maxBody: 16 << 20)
            guard r.status == 200 else {
                if r.status == 404 { throw ExchangeError(.notFound, subject, "no such repository" + Self.suffix(r)) }
                throw Self.failure(r, "GET \(key)", subject: subject)
            }
            guard let object = try? JSONSerialization.jsonObject(with: r.body) as? [String: Any] else {
                throw ExchangeError(.protocolViolation, subject, "the \(key) list is not a JSON object")
            }
            all += object[key] as? [String] ?? []
            guard let link = r.header("link"), let next = Self.nextLink(link) else { return all }
            guard next != target else { throw ExchangeError(.protocolViolation, subject, "the \(key) list links to itself") }
            target = next
        }
        throw ExchangeError(.protocolViolation, subject, "the \(key) list does not end")
    }

    /// The target of a `Link: <url>; rel="next"` header (a path, or an absolute URL on this registry).
    static func nextLink(_ header: String) -> String? {
        for part in header.split(separator: ",") {
            guard part.contains("rel=\"next\"") || part.contains("rel=next"),
                  let open = part.firstIndex(of: "<"), let close = part.firstIndex(of: ">"), open < close else { continue }
            let target = String(part[part.index(after: open)..<close])
            if target.hasPrefix("/") { return target }
            if let url = URL(string: target), let path = url.path.isEmpty ? nil : url.path {
                return path + (url.query.map { "?" + $0 } ?? "")
            }
        }
        return nil
    }

    static func suffix(_ r: HTTPResponse) -> String {
        let s = errorSummary(r)
        return s.isEmpty ? "" : " (\(s))"
    }
}
