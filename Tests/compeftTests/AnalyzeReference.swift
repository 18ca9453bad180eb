import TaskVector

/// `analyze`'s inputs read the plain way, for ``ReferenceSweep``.
enum AnalyzeReference {
    /// The residual values of `path` (with `base`), by tensor name, in name order.
    static func residuals(_ path: String, base: String? = nil) throws -> [(name: String, values: [Float])] {
        let input = try TaskVectorInput.load(path: path, base: base)
        return input.tensors.filter { $0.role == .residual }.map { t in
            var v = [Float](repeating: 0, count: t.count)
            var scratch = [Float](repeating: 0, count: t.count)
            v.withUnsafeMutableBufferPointer { dst in
                scratch.withUnsafeMutableBufferPointer { t.loadResidual(from: 0, into: dst, scratch: $0) }
            }
            return (t.name, v)
        }
    }
}
