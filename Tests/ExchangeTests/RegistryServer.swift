import CompeftTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real registry for the tests: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1, a free
/// port and filesystem storage in a temporary folder, started and stopped by the test itself.
final class RegistryServer: @unchecked Sendable {
    static let binary: String? = Tool.find("docker-registry")
    static let missing = "docker-registry is not installed (Debian package docker-registry; scripts/bootstrap.sh installs it)"

    let folder: String
    let port: Int
    let htpasswd: (user: String, password: String)?
    private var process: Process?

    /// `host:port` of the registry.
    var address: String { "127.0.0.1:\(port)" }
    /// Where the registry keeps its blobs and repositories.
    var storage: String { folder + "/storage" }

    /// Starts a registry; with `htpasswd`, every request needs that user's password (HTTP basic); with
    /// `tokens`, a bearer token from that token service (the registry trusts its certificate).
    init(htpasswd: (user: String, password: String)? = nil, tokens: TokenServer? = nil) throws {
        guard let binary = Self.binary else { throw TestFailure(Self.missing) }
        _ = binary
        folder = scratchDirectory("registry")
        port = try freePort()
        self.htpasswd = htpasswd
        var auth = ""
        if let htpasswd {
            let r = Tool.run("htpasswd", ["-Bbn", htpasswd.user, htpasswd.password])
            guard r.status == 0 else { throw TestFailure("htpasswd failed (apache2-utils): \(r.output)") }
            try r.output.trimmingCharacters(in: .whitespacesAndNewlines).appending("\n")
                .write(toFile: folder + "/htpasswd", atomically: true, encoding: .utf8)
            auth = """
                auth:
                  htpasswd:
                    realm: compeft-test
                    path: \(folder)/htpasswd
                """
        } else if let tokens {
            auth = """
                auth:
                  token:
                    realm: \(tokens.realm)
                    service: \(TokenServer.service)
                    issuer: \(TokenServer.issuer)
                    rootcertbundle: \(tokens.folder)/cert.pem
                """
        }
        let config = """
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(storage)
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
              secret: compeft-test-secret
            \(auth)
            """
        try config.write(toFile: folder + "/config.yml", atomically: true, encoding: .utf8)
        try start()
    }

    /// Starts (or restarts) the registry process on the same port and storage, and waits until it answers.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary!)
        p.arguments = ["serve", folder + "/config.yml"]
        let log = FileHandle(forWritingAtPath: folder + "/registry.log") ?? {
            FileManager.default.createFile(atPath: folder + "/registry.log", contents: nil)
            return FileHandle(forWritingAtPath: folder + "/registry.log")!
        }()
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if canConnect(port: port) { return }
            guard p.isRunning else { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let text = (try? String(contentsOfFile: folder + "/registry.log", encoding: .utf8)) ?? ""
        throw TestFailure("docker-registry did not start on \(address): \(text.suffix(2000))")
    }

    /// Kills the registry at once (SIGKILL), as a crash would.
    func kill() {
        guard let p = process, p.isRunning else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the registry.
    func freeze(_ frozen: Bool) {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, frozen ? SIGSTOP : SIGCONT)
    }

    /// The data file of a blob in the registry's storage folder.
    func blobFile(_ hex: String) -> String {
        "\(storage)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    func stop() {
        freeze(false)
        if let p = process, p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        process = nil
        try? FileManager.default.removeItem(atPath: folder)
    }

    deinit { stop() }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A port nothing listens on now: bound to 127.0.0.1:0 and released.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard bound == 0 else { throw TestFailure("bind failed") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}

/// Runs the built `compeft` binary.
enum CLI {
    static let binary = builtProduct("compeft")

    static func run(_ arguments: [String], environment: [String: String] = [:]) -> Tool.Result {
        Tool.run(binary, arguments, environment: environment)
    }
}
