@_exported import CompeftTestSupport
import Foundation
import TaskVector

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
