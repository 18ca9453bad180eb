import AdapterFormat
public import Foundation

/// Talks the OCI distribution API to one registry: authentication, retries, redirects.
///
/// - Authentication answers the registry's `401` challenge: `Basic` with the credentials the
///   ``CredentialStore`` finds, or the `Bearer` token flow (a token for the challenge's realm, service and
///   the repository scope, fetched with those credentials when there are any, cached per scope).
/// - HTTPS is verified against the system trust store. Plain HTTP is used only when
///   ``Options/plainHTTP`` says so, or for a loopback registry whose TLS handshake fails (a local
///   registry that speaks plain HTTP); credentials never travel over plain HTTP to another host.
/// - Failures that may pass (connection refused or dropped, timeouts, `429`, `5xx`) are retried
///   ``Options/attempts`` times with exponential backoff (honouring `Retry-After` up to 30 s).
/// - Redirects (blob storage, CDNs) are followed up to five times; the `Authorization` header is dropped
///   when the redirect leaves the registry's scheme, host and port, and HTTPS is never downgraded.
public final class RegistryClient: @unchecked Sendable {
    public struct Options: Sendable {
        /// Use plain HTTP for this registry (otherwise only a loopback registry falls back to it).
        public var plainHTTP = false
        /// Seconds without progress before a request fails.
        public var timeout: TimeInterval = 60
        /// Tries per request, the first included.
        public var attempts = 5
        /// The first backoff delay in seconds; doubled after every failed try.
        public var backoff: TimeInterval = 0.25
        /// Uploads larger than this go up in PATCH chunks of this size (distribution's chunked upload).
        public var chunkSize = 16 << 20
        public var credentials = CredentialStore()
        /// Receives one line per request and retry (`--verbose`).
        public var log: (@Sendable (String) -> Void)?

        public init() {}
    }

    /// `host[:port]`.
    public let registry: String
    public let options: Options
    public let transport: HTTPTransport
    private let host: String
    private let lock = NSLock()
    /// Guarded by `lock`.
    private var scheme: String
    private var basic: String?
    private var tokens: [String: String] = [:]
    private var credentialsLoaded = false
    private var credentials: Credentials?

    public init(registry: String, options: Options = Options(), transport: HTTPTransport? = nil) {
        self.registry = registry
        self.options = options
        host = registry == "docker.io" ? "registry-1.docker.io" : registry
        scheme = options.plainHTTP ? "http" : "https"
        self.transport = transport ?? HTTPTransport(timeout: options.timeout, userAgent: "compeft/\(ExchangeVersion.string)")
    }

    /// Whether requests go over plain HTTP (after a loopback registry's TLS handshake failed, or by option).
    public var usesPlainHTTP: Bool { lock.withLock { scheme == "http" } }

    var isLoopback: Bool { Reference.isLoopback(host: Reference.hostName(of: host)) }

    /// The URL of an API path (`/v2/…`) on this registry.
    func url(_ pathAndQuery: String) -> URL {
        URL(string: lock.withLock { scheme } + "://" + host + pathAndQuery)!
    }

    /// What a request needs from the token server: `repository:NAME:pull` or `…:pull,push`.
    public struct Scope: Sendable, Hashable {
        public var repository: String
        public var push: Bool
        public init(repository: String, push: Bool) {
            self.repository = repository
            self.push = push
        }
        var text: String { repository.isEmpty ? "registry:catalog:*" : "repository:\(repository):\(push ? "pull,push" : "pull")" }
    }

    /// Sends a request to the registry, answering authentication challenges, retrying what may pass and
    /// following redirects; returns the final response whatever its status.
    ///
    /// - Parameters:
    ///   - retry: whether the request may be sent again after a failure (false for a chunk upload,
    ///     which is resumed by its caller instead).
    ///   - stream: where a `200`/`206` body goes as it arrives (nil: buffered in the response).
    func send(_ method: String, _ target: String, headers: [String: String] = [:], body: Data? = nil, scope: Scope,
              subject: String, retry: Bool = true, maxBody: Int = 16 << 20,
              stream: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
              onHead: (@Sendable (HTTPResponse) -> Void)? = nil,
              beforeRetry: (() throws -> [String: String])? = nil) throws -> HTTPResponse {
        var headers = headers
        var attempt = 1
        var delay = options.backoff
        var authRetried = false
        var current = target.hasPrefix("/") ? url(target) : URL(string: target)!
        var redirects = 0
        var onRegistry = true
        while true {
            var request = HTTPRequest(method, current, headers: headers, body: body)
            if onRegistry, let auth = authorization(for: scope) { request.headers["Authorization"] = auth }
            let response: HTTPResponse
            do {
                if let stream {
                    response = try transport.stream(request, subject: subject, accept: { head in
                        guard [200, 206].contains(head.status) else { return false }
                        onHead?(head)
                        return true
                    }, sink: stream)
                } else {
                    response = try transport.send(request, maxBody: maxBody, subject: subject)
                }
            } catch var error as ExchangeError where error.code == .network {
                if error.tlsFailure, onRegistry, isLoopback, current.scheme == "https" {
                    // A registry on this machine that speaks plain HTTP: switch once, for this client.
                    lock.withLock { scheme = "http" }
                    log("\(registry): TLS handshake failed on a loopback registry; using plain HTTP")
                    current = url(current.path + (current.query.map { "?" + $0 } ?? ""))
                    continue
                }
                guard retry, attempt < options.attempts, !error.tlsFailure else {
                    if attempt > 1 { error.message += " (after \(attempt) tries)" }
                    throw error
                }
                log("\(error.description); retrying in \(String(format: "%.2g", delay)) s (try \(attempt + 1) of \(options.attempts))")
                try pause(delay, subject: subject)
                attempt += 1
                delay *= 2
                if let beforeRetry { headers.merge(try beforeRetry()) { $1 } }
                continue
            }
            log("\(method) \(current.absoluteString) → \(response.status)")
            if response.status == 401, onRegistry, !authRetried,
               let challenge = response.header("www-authenticate").flatMap(AuthChallenge.init(header:)) {
                authRetried = true
                try authenticate(challenge, scope: scope, subject: subject)
                continue
            }
            if response.status == 401 || response.status == 403 {
                throw unauthorized(response, subject: subject)
            }
            if retry, response.status == 429 || (500...599).contains(response.status), attempt < options.attempts {
                var wait = delay
                if let after = response.header("retry-after").flatMap(Double.init) { wait = min(max(after, delay), 30) }
                log("\(method) \(current.absoluteString): \(response.status); retrying in \(String(format: "%.2g", wait)) s (try \(attempt + 1) of \(options.attempts))")
                try pause(wait, subject: subject)
                attempt += 1
                delay *= 2
                if let beforeRetry { headers.merge(try beforeRetry()) { $1 } }
                continue
            }
            if response.isRedirect, let next = response.location {
                redirects += 1
                guard redirects <= 5 else {
                    throw ExchangeError(.protocolViolation, subject, "\(method) \(target): more than 5 redirects")
                }
                if current.scheme == "https", next.scheme != "https", !(Reference.isLoopback(host: next.host ?? "") || options.plainHTTP) {
                    throw ExchangeError(.protocolViolation, subject, "refusing a redirect from HTTPS to \(next.absoluteString)")
                }
                onRegistry = next.scheme == current.scheme && next.host == current.host && next.port == current.port && onRegistry
                current = next
                continue
            }
            return response
        }
    }

    func pause(_ seconds: TimeInterval, subject: String) throws {
        let end = Date().addingTimeInterval(seconds * Double.random(in: 0.8...1.2))
        while Date() < end {
            if transport.isCancelled { throw ExchangeError(.interrupted, subject, "interrupted") }
            Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow)))
        }
    }

    func log(_ line: String) { options.log?(line) }

    private func authorization(for scope: Scope) -> String? {
        lock.withLock {
            if let t = tokens[scope.text] { return "Bearer " + t }
            // A push token also serves pulls of the same repository.
            if !scope.push, let t = tokens[Scope(repository: scope.repository, push: true).text] { return "Bearer " + t }
            return basic
        }
    }

    private func loadCredentials() throws -> Credentials? {
        if let c = lock.withLock({ credentialsLoaded ? Optional(credentials) : nil }) { return c }
        let c = try options.credentials.credentials(for: registry)
        lock.withLock {
            credentials = c
            credentialsLoaded = true
        }
        return c
    }

    /// The credentials this client sends, if any were found (for messages).
    public func credentialOrigin() -> String? { try? loadCredentials()?.origin }

    private func authenticate(_ challenge: AuthChallenge, scope: Scope, subject: String) throws {
        let creds = try loadCredentials()
        switch challenge.scheme {
        case "basic":
            guard let creds else {
                throw ExchangeError(.unauthorized, subject,
                                    "\(registry) needs a user name and password: run `docker login \(registry)` or set COMPEFT_REGISTRY_USERNAME and COMPEFT_REGISTRY_PASSWORD")
            }
            guard lock.withLock({ scheme }) == "https" || isLoopback else {
                throw ExchangeError(.usage, subject, "refusing to send a password over plain HTTP to \(registry)")
            }
            lock.withLock { basic = creds.basicAuthorization }
        case "bearer":
            guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
                  let realmScheme = components.scheme, realmScheme == "https" || realmScheme == "http" else {
                throw ExchangeError(.protocolViolation, subject, "\(registry) asked for a bearer token without a usable realm")
            }
            let realmLoopback = Reference.isLoopback(host: components.host ?? "")
            if realmScheme == "http", !(realmLoopback || options.plainHTTP) {
                throw ExchangeError(.protocolViolation, subject, "refusing a token realm over plain HTTP: \(realm)")
            }
            var items = components.queryItems ?? []
            if let service = challenge.parameters["service"] { items.append(URLQueryItem(name: "service", value: service)) }
            // Ask for the scope this request needs; the challenge's scope may be narrower (pull only).
            items.append(URLQueryItem(name: "scope", value: scope.text))
            components.queryItems = items
            var headers: [String: String] = [:]
            if let creds { headers["Authorization"] = creds.basicAuthorization }
            let response = try transport.send(HTTPRequest("GET", components.url!, headers: headers), maxBody: 1 << 20, subject: subject)
            log("GET \(realm) (token for \(scope.text)) → \(response.status)")
            guard response.status == 200 else {
                if response.status == 401 || response.status == 403 {
                    throw ExchangeError(.unauthorized, subject, creds.map { "the token server \(realm) refused the credentials from \($0.origin)" }
                                        ?? "the token server \(realm) wants credentials: run `docker login \(registry)` or set COMPEFT_REGISTRY_USERNAME and COMPEFT_REGISTRY_PASSWORD")
                }
                throw ExchangeError(.network, subject, "token server \(realm) answered \(response.status)")
            }
            guard let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
                  let token = (object["token"] as? String) ?? (object["access_token"] as? String), !token.isEmpty else {
                throw ExchangeError(.protocolViolation, subject, "the token server \(realm) sent no token")
            }
            lock.withLock { tokens[scope.text] = token }
        default:
            throw ExchangeError(.unauthorized, subject, "\(registry) asks for '\(challenge.scheme)' authentication, which compeft does not speak")
        }
    }

    private func unauthorized(_ response: HTTPResponse, subject: String) -> ExchangeError {
        let detail = Self.errorSummary(response)
        let origin = credentialOrigin()
        let message: String
        if response.status == 403 {
            message = "\(registry) denied access (403)" + (detail.isEmpty ? "" : ": " + detail)
        } else if let origin {
            message = "\(registry) refused the credentials from \(origin) (401)" + (detail.isEmpty ? "" : ": " + detail)
        } else {
            message = "\(registry) needs credentials (401): run `docker login \(registry)` or set COMPEFT_REGISTRY_USERNAME and COMPEFT_REGISTRY_PASSWORD"
        }
        return ExchangeError(.unauthorized, subject, message)
    }

    /// `CODE: message` for each error of an OCI error body, or the status line.
    static func errorSummary(_ response: HTTPResponse) -> String {
        if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
           let errors = object["errors"] as? [[String: Any]], !errors.isEmpty {
            return errors.map { e in
                let code = e["code"] as? String ?? "?"
                let message = e["message"] as? String ?? ""
                return message.isEmpty ? code : "\(code): \(message)"
            }.joined(separator: "; ")
        }
        return ""
    }

    /// An error for an unexpected status: `.notFound` for 404, `.network` for 5xx, else `.protocolViolation`.
    static func failure(_ response: HTTPResponse, _ what: String, subject: String) -> ExchangeError {
        let summary = errorSummary(response)
        let text = "\(what): \(response.status)" + (summary.isEmpty ? "" : " (\(summary))")
        switch response.status {
        case 404: return ExchangeError(.notFound, subject, text)
        case 500...599, 429: return ExchangeError(.network, subject, text)
        default: return ExchangeError(.protocolViolation, subject, text)
        }
    }
}

/// The version reported in the User-Agent and in the config blob.
enum ExchangeVersion {
    static var string: String { CompeftVersion.string }
}
