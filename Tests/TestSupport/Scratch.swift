import Foundation

/// The repository root, found from this file's path (the fixtures' Python tools, the C header and
/// test, and the examples live there).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A new, empty folder for one test's files, under `compeft-tests-PID/` in the temporary folder.
public func scratchDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("compeft-tests-\(ProcessInfo.processInfo.processIdentifier)/\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// The built product `name` (an executable or library), found next to the test bundle: `swift build
/// --build-tests` puts every product of the package into the same folder.
public func builtProduct(_ name: String) -> String {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
        Bundle.main.bundleURL.path,
        Bundle.main.bundleURL.deletingLastPathComponent().path,
    ].map { $0 + "/" + name }
    return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
}
