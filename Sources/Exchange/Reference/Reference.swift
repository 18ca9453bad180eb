/// A registry reference: `registry/repository[:tag][@sha256:…]`, parsed as the distribution
/// project's reference grammar does.
///
/// The first path component is the registry when it contains a `.` or a `:` or is `localhost`
/// (`localhost:5000/experts/sentiment:v1`, `ghcr.io/acme/expert@sha256:…`); otherwise the reference is on
/// Docker Hub (`docker.io`, with `library/` added to a one-component name), as `docker pull` reads it.
/// A reference with neither tag nor digest means the tag `latest`.
public struct Reference: Hashable, Sendable, CustomStringConvertible {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    public let registry: String
    /// The repository path, `experts/sentiment`.
    public let repository: String
    /// The tag, when one was written.
    public let tag: String?
    /// The manifest digest, when one was written (it wins over the tag when both are).
    public let digest: Digest?

    public init(registry: String, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses `text`.
    ///
    /// - Parameter requireRegistry: refuse a reference without an explicit registry (no Docker Hub default).
    /// - Throws: ``ExchangeError`` (`.usage`) saying what is wrong with the reference.
    public init(parsing text: String) throws {
        func bad(_ why: String) -> ExchangeError { ExchangeError(.usage, text, "not a registry reference: \(why)") }
        guard !text.isEmpty else { throw bad("it is empty") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard let parsed = Digest(d) else { throw bad("'\(d)' is not a digest (sha256: and 64 lowercase hex digits)") }
            digest = parsed
            rest = rest[..<at]
        }
        // A tag follows the last ':' after the last '/'; a ':' before it is a port.
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isTag(t) else { throw bad("'\(t)' is not a tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')") }
            tag = t
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = "docker.io"
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
            guard Self.isRegistry(first) else { throw bad("'\(first)' is not a registry host[:port]") }
            registry = first
            components.removeFirst()
        }
        if registry == "docker.io" && components.count == 1 { components.insert("library", at: 0) }
        for c in components {
            guard Self.isPathComponent(c) else {
                throw bad("repository component '\(c)' must be lowercase letters and digits, joined by '.', '_', '__' or '-'")
            }
        }
        let repository = components.joined(separator: "/")
        guard repository.utf8.count + registry.utf8.count < 256 else { throw bad("the name is longer than 255 characters") }
        self.init(registry: registry, repository: repository, tag: tag, digest: digest)
    }

    /// What the registry is asked for: the digest when there is one, else the tag (`latest` by default).
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// The same repository with `tag` and no digest.
    public func with(tag: String) -> Reference { Reference(registry: registry, repository: repository, tag: tag, digest: nil) }

    /// The same repository pinned to `digest` (the tag is kept for display).
    public func with(digest: Digest) -> Reference { Reference(registry: registry, repository: repository, tag: tag, digest: digest) }

    /// The reference as a user writes it.
    public var description: String {
        var s = registry + "/" + repository
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.description }
        return s
    }

    /// `registry/repository`, without tag or digest.
    public var repositoryName: String { registry + "/" + repository }

    /// The host the API is served from: Docker Hub's `docker.io` is `registry-1.docker.io`.
    public var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    /// The host without its port, brackets removed (`::1`, `127.0.0.1`, `localhost`).
    public var hostName: String { Self.hostName(of: apiHost) }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8, `::1`): the only hosts plain
    /// HTTP is tried with when not asked for.
    public var isLoopback: Bool { Self.isLoopback(host: hostName) }

    static func hostName(of hostPort: String) -> String {
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            return String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
        }
        if let colon = hostPort.lastIndex(of: ":") { return String(hostPort[..<colon]) }
        return hostPort
    }

    static func isLoopback(host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h == "::1" { return true }
        let octets = h.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    static func isTag(_ t: String) -> Bool {
        guard let first = t.utf8.first, t.utf8.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 }
        return word(first) && t.utf8.allSatisfy { word($0) || $0 == 46 || $0 == 45 }
    }

    static func isPathComponent(_ c: String) -> Bool {
        // alnum+ ((. | _ | __ | -+) alnum+)*
        let bytes = Array(c.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 97 && b <= 122) }
        var i = 0
        func run() -> Bool {
            let start = i
            while i < bytes.count, alnum(bytes[i]) { i += 1 }
            return i > start
        }
        guard run() else { return false }
        while i < bytes.count {
            let start = i
            if bytes[i] == 46 { i += 1 } else if bytes[i] == 95 {
                i += 1
                if i < bytes.count, bytes[i] == 95 { i += 1 }
            } else if bytes[i] == 45 {
                while i < bytes.count, bytes[i] == 45 { i += 1 }
            } else { return false }
            guard i > start, run() else { return false }
        }
        return true
    }

    static func isRegistry(_ r: String) -> Bool {
        var host = Substring(r)
        if r.hasPrefix("[") {
            guard let close = r.firstIndex(of: "]") else { return false }
            let after = r[r.index(after: close)...]
            guard after.isEmpty || (after.hasPrefix(":") && UInt16(after.dropFirst()) != nil) else { return false }
            return r[r.index(after: r.startIndex)..<close].allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        if let colon = r.lastIndex(of: ":") {
            guard UInt16(r[r.index(after: colon)...]) != nil else { return false }
            host = r[..<colon]
        }
        return !host.isEmpty && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.first != "-" && label.last != "-" && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
