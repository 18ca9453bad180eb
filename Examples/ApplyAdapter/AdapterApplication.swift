import AdapterFormat
import TaskVector

/// What applying one tensor of a container did.
struct AppliedTensor {
    enum Action {
        /// factor × τ was added at `changed` positions; the largest change was `maxChange`.
        case added(changed: Int, maxChange: Float)
        /// The tensor is stored exactly in the container and replaced the base's.
        case replaced
        /// The container does not mention it: the base tensor, unchanged.
        case unchanged
    }

    var name: String
    var dtype: DType
    var shape: [Int]
    var action: Action
    /// The resulting weights, little-endian `dtype`.
    var bytes: [UInt8]
}

/// Applies a full fine-tune's container to its base model: the core of the example, kept apart from
/// the command line so a test can call it too.
enum AdapterApplication {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Adds `factor` × τ of every residual tensor of `reader` into a copy of the matching tensor of
    /// `base` (by name), in the base's own dtype (F32, F16 or BF16); exact tensors replace the base's.
    ///
    /// - Returns: every tensor of the base, in name order.
    /// - Throws: ``Failure`` when the container is not a full fine-tune of `base` (a name missing from
    ///   the base, a shape mismatch, adapter tensors), or a ``FormatError`` for a damaged payload.
    static func apply(_ reader: ContainerReader, to base: Checkpoint, factor: Float = 1) throws -> [AppliedTensor] {
        let byName = Dictionary(uniqueKeysWithValues: reader.index.tensors.map { ($0.name, $0) })
        for t in reader.index.tensors {
            guard t.role == .exact || t.initRule == .base else {
                throw Failure(description: "\(reader.path): tensor '\(t.name)' is an adapter weight (init \(t.initRule.rawValue)), "
                              + "not a delta of base weights; this example applies full fine-tunes (decompress adapters instead)")
            }
            guard let entry = base.entry(t.name) else {
                throw Failure(description: "\(base.path): has no tensor '\(t.name)', which the container updates")
            }
            guard entry.shape == t.shape else {
                throw Failure(description: "\(base.path): tensor '\(t.name)' has shape \(entry.shape), the container's is \(t.shape)")
            }
        }
        return try base.names.map { name in
            let entry = base.entry(name)!
            var bytes = Array(entry.data.bytes)
            guard let t = byName[name] else {
                return AppliedTensor(name: name, dtype: entry.dtype, shape: entry.shape, action: .unchanged, bytes: bytes)
            }
            guard ContainerReader.decodableTypes.contains(entry.dtype) else {
                throw Failure(description: "\(base.path): tensor '\(name)' is \(entry.dtype.rawValue); apply needs F32, F16 or BF16 weights")
            }
            if t.role == .exact {
                try bytes.withUnsafeMutableBytes { try reader.decode(t, as: entry.dtype, into: $0) }
                return AppliedTensor(name: name, dtype: entry.dtype, shape: entry.shape, action: .replaced, bytes: bytes)
            }
            // The serving path: add factor × τ in place, touching only the kept positions.
            try bytes.withUnsafeMutableBytes { try reader.apply(t, to: $0, as: entry.dtype, factor: factor) }
            let (changed, maxChange) = difference(entry.data, bytes, dtype: entry.dtype)
            return AppliedTensor(name: name, dtype: entry.dtype, shape: entry.shape,
                                 action: .added(changed: changed, maxChange: maxChange), bytes: bytes)
        }
    }

    /// How many values differ between `before` and `after`, and the largest absolute difference.
    private static func difference(_ before: TensorData, _ after: [UInt8], dtype: DType) -> (Int, Float) {
        var old = [Float](repeating: 0, count: before.count)
        var new = [Float](repeating: 0, count: before.count)
        old.withUnsafeMutableBufferPointer { before.loadFloats(from: 0, into: $0) }
        after.withUnsafeBytes { raw in
            new.withUnsafeMutableBufferPointer { TensorData(dtype: dtype, bytes: raw, owner: nil).loadFloats(from: 0, into: $0) }
        }
        var changed = 0
        var largest: Float = 0
        for i in old.indices where old[i] != new[i] {
            changed += 1
            largest = max(largest, abs(new[i] - old[i]))
        }
        return (changed, largest)
    }
}
