import Foundation

/// The repository root, found from this file's path (the header, the C test and the examples live there).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The built C library, found next to the test bundle as Tests/compeftTests finds the `compeft` binary:
/// `swift build --build-tests` links every product of the package into the same folder.
enum BuiltLibrary {
    static let fileName = "libCompeftC.so"

    static let directory: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundleURL.path,
            Bundle.main.bundleURL.deletingLastPathComponent().path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/" + fileName) } ?? candidates[0]
    }()

    static var path: String { directory + "/" + fileName }
}

/// Runs other programs: the C compiler, the compiled C test, Python.
enum Tool {
    struct Result {
        var status: Int32
        var output: String
    }

    /// The first of `names` that is an executable on PATH.
    static func find(_ names: String...) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in names {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    static let cCompiler = find("cc", "clang", "gcc")
    static let cxxCompiler = find("c++", "clang++", "g++")

    /// Runs `executable` with standard input from /dev/null; stdout and stderr are merged.
    static func run(_ executable: String, _ arguments: [String], in directory: String? = nil) -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return Result(status: -1, output: "cannot run \(executable): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}

/// Python for the ctypes example; tests that need it are disabled with a visible reason when it is absent.
enum Python {
    static let hasNumpyAndSafetensors: Bool = {
        guard let python = Tool.find("python3") else { return false }
        return Tool.run(python, ["-c", "import ctypes, numpy, safetensors.numpy"]).status == 0
    }()
}

func scratchDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("compeft-cabi-\(getpid())/\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}
