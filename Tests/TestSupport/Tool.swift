public import Foundation

/// Runs other programs for the tests: Python, the C compiler, the compiled C test, the examples.
public enum Tool {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
        /// stdout, then stderr.
        public var output: String { String(decoding: stdout, as: UTF8.self) + stderr }
    }

    /// The first of `names` that is an executable on PATH.
    public static func find(_ names: String...) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in names {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    public static let cCompiler = find("cc", "clang", "gcc")
    public static let cxxCompiler = find("c++", "clang++", "g++")

    /// Runs `executable` (a path, or a name looked up on PATH), feeding it `stdin` (or /dev/null), with
    /// `environment` added to this process's.
    public static func run(_ executable: String, _ arguments: [String], in directory: String? = nil,
                           environment: [String: String]? = nil, stdin: Data? = nil) -> Result {
        guard let path = executable.contains("/") ? executable : find(executable) else {
            return Result(status: -1, stdout: Data(), stderr: "\(executable) is not on PATH")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        do { try p.run() } catch { return Result(status: -1, stdout: Data(), stderr: "cannot run \(executable): \(error)") }
        if let stdin {
            DispatchQueue.global().async {
                input.fileHandleForWriting.write(stdin)
                try? input.fileHandleForWriting.close()
            }
        }
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errors = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errors.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: output, stderr: String(decoding: errors.data, as: UTF8.self))
    }
}
