public import TaskVector

/// Streams a tensor's residual values in fixed-size chunks through reusable buffers.
///
/// No allocation happens per chunk; the buffers belong to the caller's `ResidualChunks` value.
public struct ResidualChunks: ~Copyable {
    /// Elements per chunk (64 Ki values, 256 KiB: stays in L2).
    public static let chunkSize = 1 << 16

    private let values: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>

    public init() {
        values = .allocate(capacity: Self.chunkSize)
        scratch = .allocate(capacity: Self.chunkSize)
    }

    deinit {
        values.deallocate()
        scratch.deallocate()
    }

    /// Calls `body(offset, chunk)` for consecutive chunks of `tensor`'s residual.
    public func forEach<E: Error>(_ tensor: SourceTensor,
                                  _ body: (Int, UnsafeBufferPointer<Float>) throws(E) -> Void) throws(E) {
        let n = tensor.count
        var start = 0
        while start < n {
            let len = min(Self.chunkSize, n - start)
            let chunk = UnsafeMutableBufferPointer(rebasing: values[0..<len])
            tensor.loadResidual(from: start, into: chunk, scratch: scratch)
            try body(start, UnsafeBufferPointer(chunk))
            start += len
        }
    }
}
