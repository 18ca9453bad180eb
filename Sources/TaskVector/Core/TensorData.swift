#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A typed, read-only view of a tensor's little-endian bytes.
///
/// The view keeps its backing file alive; elements are converted to `Float` chunk by chunk, so a
/// tensor larger than memory can be streamed.
public struct TensorData: @unchecked Sendable {
    public let dtype: DType
    public let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?

    public init(dtype: DType, bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.dtype = dtype
        self.bytes = bytes
        self.owner = owner
    }

    /// Number of elements.
    public var count: Int { bytes.count / dtype.byteSize }

    /// Drops the mapped pages behind an element range when the data is a mapped file (no-op otherwise).
    public func releasePages(elements: Range<Int>) {
        guard let file = owner as? MappedFile, let base = bytes.baseAddress, let fileBase = file.bytes.baseAddress else { return }
        let start = base - fileBase + elements.lowerBound * dtype.byteSize
        file.release(range: start..<(start + elements.count * dtype.byteSize))
    }

    /// Converts `destination.count` elements starting at element `start` to `Float`.
    ///
    /// `F64` rounds to nearest; `F16` and `BF16` widen exactly.
    /// - Precondition: the dtype is floating point and the range is inside the tensor.
    public func loadFloats(from start: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        let n = destination.count
        precondition(start >= 0 && start + n <= count, "element range out of bounds")
        guard n > 0, let base = bytes.baseAddress else { return }
        let out = destination.baseAddress!
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: base + start * 4, byteCount: n * 4)
        case .f16:
            let src = base + start * 2
            for i in 0..<n {
                out[i] = FloatConversion.float(fromF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
            }
        case .bf16:
            let src = base + start * 2
            for i in 0..<n {
                out[i] = FloatConversion.float(fromBF16: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self)))
            }
        case .f64:
            let src = base + start * 8
            for i in 0..<n {
                out[i] = Float(src.loadUnaligned(fromByteOffset: i &* 8, as: Double.self))
            }
        default:
            preconditionFailure("loadFloats on non-float dtype \(dtype)")
        }
    }
}

/// Encodes `Float` values into a dtype's little-endian bytes.
public enum FloatEncoding {
    /// Writes `source` as `dtype` into `destination` (which must hold `source.count × dtype.byteSize` bytes).
    public static func store(_ source: UnsafeBufferPointer<Float>, as dtype: DType, into destination: UnsafeMutableRawBufferPointer) {
        let n = source.count
        precondition(destination.count >= n * dtype.byteSize, "destination too small")
        guard n > 0, let out = destination.baseAddress, let src = source.baseAddress else { return }
        switch dtype {
        case .f32:
            out.copyMemory(from: src, byteCount: n * 4)
        case .f16:
            for i in 0..<n { out.storeBytes(of: FloatConversion.f16(from: src[i]).littleEndian, toByteOffset: i &* 2, as: UInt16.self) }
        case .bf16:
            for i in 0..<n { out.storeBytes(of: FloatConversion.bf16(from: src[i]).littleEndian, toByteOffset: i &* 2, as: UInt16.self) }
        case .f64:
            for i in 0..<n { out.storeBytes(of: Double(src[i]), toByteOffset: i &* 8, as: Double.self) }
        default:
            preconditionFailure("store on non-float dtype \(dtype)")
        }
    }
}

/// Memory owned by a ``TensorData`` that was read into memory rather than mapped.
final class OwnedBytes {
    let buffer: UnsafeMutableRawBufferPointer
    /// Whether ``buffer`` came from `posix_memalign` (``init(uninitializedByteCount:)``), so `free` releases it.
    private var fromMalloc = false
    init(copying bytes: some Collection<UInt8>) {
        buffer = .allocate(byteCount: max(bytes.count, 1), alignment: 64)
        _ = buffer.initializeMemory(as: UInt8.self, from: bytes)
    }
    /// Memory of `byteCount` bytes, for a reader that fills all of it before anyone reads it; nil when
    /// the system has not that much to give (instead of ending the process).
    init?(uninitializedByteCount byteCount: Int) {
        var base: UnsafeMutableRawPointer?
        guard posix_memalign(&base, 64, max(byteCount, 1)) == 0, let base else { return nil }
        buffer = UnsafeMutableRawBufferPointer(start: base, count: max(byteCount, 1))
        fromMalloc = true
    }
    /// Zero-filled memory of `byteCount` bytes, for a reader to fill in place.
    init(zeroedByteCount byteCount: Int) {
        buffer = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit {
        if fromMalloc { free(buffer.baseAddress) } else { buffer.deallocate() }
    }
}

extension TensorData {
    /// A view that owns `values` as `F32` (for values computed in memory, such as LoRA factors in
    /// another gauge).
    public init(float32 values: [Float]) {
        let owned = OwnedBytes(zeroedByteCount: values.count * 4)
        values.withUnsafeBytes { owned.buffer.copyMemory(from: $0) }
        self.init(dtype: .f32, bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(owned.buffer)[0..<(values.count * 4)]),
                  owner: owned)
    }

    /// A view that owns `count` `F32` values written in place by `body`, which must set every one (no
    /// intermediate array, so no second copy of values computed in memory).
    public init(float32Count count: Int, initializingWith body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let owned = OwnedBytes(zeroedByteCount: count * 4)
        let bytes = UnsafeMutableRawBufferPointer(rebasing: owned.buffer[0..<(count * 4)])
        body(bytes.bindMemory(to: Float.self))
        self.init(dtype: .f32, bytes: UnsafeRawBufferPointer(bytes), owner: owned)
    }

    /// A view that owns a copy of `bytes` (little-endian elements of `dtype`).
    public init(dtype: DType, copying bytes: some Collection<UInt8>) {
        let owned = OwnedBytes(copying: bytes)
        self.init(dtype: dtype, bytes: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(owned.buffer)[0..<bytes.count]), owner: owned)
    }
}

/// A named tensor held by a reader that is not safetensors (HDF5, PyTorch `.bin`): the unit every
/// reader produces.
public struct LoadedTensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var data: TensorData

    public init(name: String, dtype: DType, shape: [Int], data: TensorData) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }
}
