@_exported import CompeftTestSupport
import Foundation

/// Runs the built `compeft` binary, as a user's shell script would.
enum CLI {
    static let binary = builtProduct("compeft")

    typealias Result = Tool.Result

    /// Runs `compeft` with `arguments`, feeding `stdin` (or /dev/null).
    static func run(_ arguments: [String], stdin: Data? = nil) throws -> Result {
        Tool.run(binary, arguments, stdin: stdin)
    }
}

extension Tool.Result {
    /// stdout as text.
    var out: String { String(decoding: stdout, as: UTF8.self) }
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
