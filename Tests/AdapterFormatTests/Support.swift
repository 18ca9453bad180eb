@_exported import CompeftTestSupport
import Foundation
import TaskVector

/// The repository root, found from this file's path (Fixtures' Python tools live there).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func scratchDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("compeft-af-\(getpid())/\(name)-\(UUID().uuidString)")
    try? FileManager.default.removeItem(at: dir)
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.path
}

/// Runs Python for cross-checks. Tests that need it are disabled with a visible reason when it is absent.

/// Loads every float tensor of a safetensors file as Float, by name.
func floatTensors(_ path: String) throws -> [String: (DType, [Int], [Float])] {
    let f = try SafeTensorsFile(path: path)
    var out: [String: (DType, [Int], [Float])] = [:]
    for t in f.tensors {
        guard t.dtype.isFloatingPoint else { continue }
        var v = [Float](repeating: 0, count: t.count)
        v.withUnsafeMutableBufferPointer { f.data(of: t).loadFloats(from: 0, into: $0) }
        out[t.name] = (t.dtype, t.shape, v)
    }
    return out
}
