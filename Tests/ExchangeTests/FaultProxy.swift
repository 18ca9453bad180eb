import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Python helper server from Tests/ExchangeTests (faultproxy.py, tokenserver.py) on 127.0.0.1: started
/// with its arguments, it prints `PORT n` once listening and then one line per event, which ``log`` collects.
class ScriptServer: @unchecked Sendable {
    let port: Int
    private let process: Process
    private let lock = NSLock()
    private var lines: [String] = []

    init(script: String, arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Tool.find("python3") ?? "/usr/bin/python3")
        process.arguments = [repositoryRoot + "/Tests/ExchangeTests/" + script] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let handle = out.fileHandleForReading
        var buffer = Data()
        var found: Int?
        while found == nil {
            let d = handle.availableData
            guard !d.isEmpty else { throw TestFailure("\(script) did not start") }
            buffer += d
            if let text = String(data: buffer, encoding: .utf8), let line = text.split(separator: "\n").first(where: { $0.hasPrefix("PORT ") }) {
                found = Int(line.dropFirst(5))
            }
        }
        port = found!
        let rest = buffer
        Thread.detachNewThread { [weak self] in
            var pending = String(decoding: rest, as: UTF8.self)
            while true {
                let lines = pending.split(separator: "\n", omittingEmptySubsequences: false)
                self?.lock.withLock { self?.lines += lines.dropLast().map(String.init) }
                pending = String(lines.last ?? "")
                let d = handle.availableData
                if d.isEmpty { return }
                pending += String(decoding: d, as: UTF8.self)
            }
        }
    }

    var address: String { "127.0.0.1:\(port)" }

    var log: [String] { lock.withLock { lines } }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)  // a stalled proxy thread keeps SIGTERM from ending it
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// Tests/ExchangeTests/faultproxy.py in front of a registry: one injected fault (a stalled or dropped
/// response, an error status) in one exchange, and a log of every request line it forwarded.
final class FaultProxy: ScriptServer, @unchecked Sendable {
    /// `rule` is `stall:MATCH:N`, `drop:MATCH:N` or `status:MATCH:N` (see faultproxy.py).
    init(upstream: Int, rule: String) throws {
        try super.init(script: "faultproxy.py", arguments: [String(upstream), rule])
    }

    /// Waits until the proxy reports that its fault happened.
    func waitUntilFired(timeout: TimeInterval = 30) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if log.contains(where: { $0.hasPrefix("FIRED") }) { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }
}

/// Tests/ExchangeTests/tokenserver.py: the token service of the registry's bearer-token flow, granting
/// tokens to one user; its ``log`` has a `TOKEN granted|refused SCOPE…` line per request.
final class TokenServer: ScriptServer, @unchecked Sendable {
    /// The folder holding the certificate the registry must trust (`cert.pem`).
    let folder: String
    static let service = "compeft-test-registry"
    static let issuer = "compeft-test-issuer"

    init(user: String, password: String) throws {
        folder = scratchDirectory("token")
        try super.init(script: "tokenserver.py", arguments: [folder, user, password])
    }

    var realm: String { "http://\(address)/token" }
}
