@_exported import CompeftTestSupport
import Foundation

/// Runs the built `compeft` binary, as a user's shell script would.
enum CLI {
    static let binary = builtProduct("compeft")

    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: String
        var out: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs `compeft` with `arguments`, feeding `stdin` (or /dev/null).
    static func run(_ arguments: [String], stdin: Data? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try p.run()
        if let stdin {
            DispatchQueue.global().async {
                input.fileHandleForWriting.write(stdin)
                try? input.fileHandleForWriting.close()
            }
        }
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: outData, stderr: String(decoding: errBox.data, as: UTF8.self))
    }
}

func fixture(_ name: String) -> String { repositoryRoot + "/Fixtures/files/" + name }

/// Every file under `path` with its bytes, to prove inputs are never modified.
func snapshot(_ path: String) -> [String: Data] {
    var out: [String: Data] = [:]
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return out }
    if !isDir.boolValue { out[path] = fm.contents(atPath: path); return out }
    for name in (try? fm.subpathsOfDirectory(atPath: path)) ?? [] { out[name] = fm.contents(atPath: path + "/" + name) }
    return out
}
