public import Foundation

/// A user name and password (or token) for one registry, and where they were found.
public struct Credentials: Sendable, Equatable {
    public var username: String
    public var password: String
    /// `COMPEFT_REGISTRY_USERNAME`, `/root/.docker/config.json`, `docker-credential-pass`, …: named in errors.
    public var origin: String

    public init(username: String, password: String, origin: String) {
        self.username = username
        self.password = password
        self.origin = origin
    }

    /// `Basic base64(user:password)`.
    var basicAuthorization: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// Finds credentials for a registry, as Docker, Podman and skopeo do.
///
/// In order: the environment (`COMPEFT_REGISTRY_USERNAME` and `COMPEFT_REGISTRY_PASSWORD`, for any
/// registry this command talks to); then the first auth file that exists of `$REGISTRY_AUTH_FILE`,
/// `$DOCKER_CONFIG/config.json` and `~/.docker/config.json`, where a registry's entry is looked up under
/// `host[:port]` (and `https://host[:port]`, `https://host/v1/`), through `credHelpers[host]` or
/// `credsStore` (the program `docker-credential-NAME get`) when the file names one, else `auths[host].auth`
/// (base64 `user:password`) or `username`/`password`.
public struct CredentialStore: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The auth file consulted, if any exists.
    public var authFile: String? {
        var candidates: [String] = []
        if let f = environment["REGISTRY_AUTH_FILE"], !f.isEmpty { candidates.append(f) }
        if let d = environment["DOCKER_CONFIG"], !d.isEmpty { candidates.append(d + "/config.json") }
        if let home = environment["HOME"], !home.isEmpty { candidates.append(home + "/.docker/config.json") }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// Credentials for `registry` (`host[:port]`), or nil when none are configured.
    ///
    /// - Throws: ``ExchangeError`` (`.usage`) for an auth file that is not valid JSON, an entry that is not
    ///   base64 `user:password`, or a credential helper that fails.
    public func credentials(for registry: String) throws -> Credentials? {
        if let user = environment["COMPEFT_REGISTRY_USERNAME"], let password = environment["COMPEFT_REGISTRY_PASSWORD"] {
            return Credentials(username: user, password: password, origin: "COMPEFT_REGISTRY_USERNAME/COMPEFT_REGISTRY_PASSWORD")
        }
        guard let file = authFile else { return nil }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw ExchangeError(.usage, file, "cannot read the registry auth file: \(error.localizedDescription)")
        }
        guard let config = object as? [String: Any] else { throw ExchangeError(.usage, file, "is not a JSON object") }
        let keys = Self.lookupKeys(for: registry)
        if let helpers = config["credHelpers"] as? [String: String], let helper = keys.lazy.compactMap({ helpers[$0] }).first {
            return try runHelper(helper, registry: registry)
        }
        if let auths = config["auths"] as? [String: Any] {
            for key in keys {
                guard let entry = auths[key] as? [String: Any] else { continue }
                if let auth = entry["auth"] as? String, !auth.isEmpty {
                    guard let data = Data(base64Encoded: auth), let text = String(data: data, encoding: .utf8),
                          let colon = text.firstIndex(of: ":") else {
                        throw ExchangeError(.usage, file, "auths[\"\(key)\"].auth is not base64 of user:password")
                    }
                    return Credentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]), origin: file)
                }
                if let user = entry["username"] as? String, let password = entry["password"] as? String {
                    return Credentials(username: user, password: password, origin: file)
                }
            }
        }
        if let store = config["credsStore"] as? String, !store.isEmpty {
            return try runHelper(store, registry: registry)
        }
        return nil
    }

    static func lookupKeys(for registry: String) -> [String] {
        var keys = [registry, "https://" + registry, "http://" + registry, "https://\(registry)/v1/", "https://\(registry)/v2/"]
        if registry == "docker.io" { keys += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"] }
        return keys
    }

    /// Runs `docker-credential-NAME get` with the server on standard input (the docker-credential-helpers protocol).
    private func runHelper(_ name: String, registry: String) throws -> Credentials? {
        let program = "docker-credential-" + name
        let path = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(program)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw ExchangeError(.usage, registry, "the auth file names the credential helper '\(program)', which is not on PATH") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["get"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { throw ExchangeError(.usage, registry, "cannot run \(program): \(error.localizedDescription)") }
        input.fileHandleForWriting.write(Data(registry.utf8))
        try? input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if p.terminationStatus != 0 {
            if text.contains("credentials not found") { return nil }
            throw ExchangeError(.usage, registry, "\(program) get failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let user = object["Username"] as? String, let secret = object["Secret"] as? String else {
            throw ExchangeError(.usage, registry, "\(program) get printed no Username/Secret JSON")
        }
        return Credentials(username: user, password: secret, origin: program)
    }
}
