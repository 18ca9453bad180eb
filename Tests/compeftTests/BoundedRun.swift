import Foundation

/// Runs the built `compeft` under a watchdog, so that a test of a hang fails instead of hanging the
/// suite, and so that tests can signal it mid-run.
final class BoundedRun: @unchecked Sendable {
    let process = Process()
    private let stderrPipe = Pipe()
    private let stdoutPipe = Pipe()
    private var errData = Data()
    private let drained = DispatchGroup()
    private let lock = NSLock()
    private var killedByWatchdog = false

    struct Result {
        var status: Int32
        var reason: Process.TerminationReason
        var stderr: String
        /// The watchdog killed it: it ran past its limit.
        var timedOut: Bool
        var seconds: Double
    }

    /// Starts `compeft arguments…` with standard input from /dev/null, in `directory` if given, with
    /// `environment` added to this process's.
    init(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        drained.enter()
        DispatchQueue.global().async { [self] in
            let data = stderrPipe.fileHandleForReading.readDataToEndOfFile()
            lock.withLock { errData = data }
            drained.leave()
        }
        drained.enter()
        DispatchQueue.global().async { [self] in
            _ = stdoutPipe.fileHandleForReading.readDataToEndOfFile()
            drained.leave()
        }
    }

    /// Sends `signal` to the process.
    func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

    var isRunning: Bool { process.isRunning }

    /// The files the process has open, as `/proc/PID/fd` names them (an unnamed `O_TMPFILE` shows as
    /// `FOLDER/#INODE (deleted)`).
    var openFiles: [String] {
        let fds = "/proc/\(process.processIdentifier)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + $0)
        }
    }

    /// Waits at most `seconds` for the process to end; past that it is killed and the result says so.
    func wait(seconds: Double) -> Result {
        let start = Date()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { [self] in
            process.waitUntilExit()
            done.signal()
        }
        if done.wait(timeout: .now() + seconds) == .timedOut {
            lock.withLock { killedByWatchdog = true }
            kill(process.processIdentifier, SIGKILL)
            done.wait()
        }
        drained.wait()
        return lock.withLock {
            Result(status: process.terminationStatus, reason: process.terminationReason,
                   stderr: String(decoding: errData, as: UTF8.self), timedOut: killedByWatchdog,
                   seconds: Date().timeIntervalSince(start))
        }
    }

    /// Runs `compeft arguments…` to its end, or kills it after `seconds`.
    static func run(_ arguments: [String], seconds: Double = 60, in directory: String? = nil) throws -> Result {
        try BoundedRun(arguments, in: directory).wait(seconds: seconds)
    }
}
