public import TaskVector
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a tensor's residual values in fixed-size chunks through reusable buffers.
///
/// No allocation happens per chunk. An `F32` tensor with init 0 is read in place from its (mapped)
/// file, without a copy. Pages of a mapped input are handed back to the kernel as the stream passes
/// them, so streaming a model larger than memory keeps the resident set small; an input that fits in
/// memory several times over (``keepsMapped(_:)``) stays mapped instead, so a later pass over it does not
/// pay the kernel to unmap and map every page again.
public struct ResidualChunks: ~Copyable {
    /// Elements per chunk (64 Ki values, 256 KiB: stays in L2).
    public static let chunkSize = 1 << 16
    /// Mapped bytes read between two page releases.
    static let releaseInterval = 32 << 20

    private let values: UnsafeMutableBufferPointer<Float>
    private let scratch: UnsafeMutableBufferPointer<Float>
    /// Hand pages back as the stream passes them.
    public let releasesPages: Bool

    /// - Parameter releasesPages: hand the pages of a mapped input back as the stream passes them (for
    ///   inputs that may not fit in memory; see ``keepsMapped(_:)``).
    public init(releasesPages: Bool = true) {
        values = .allocate(capacity: Self.chunkSize)
        scratch = .allocate(capacity: Self.chunkSize)
        self.releasesPages = releasesPages
    }

    /// Whether an input of these tensors is small enough to stay mapped between passes: its bytes
    /// (fine-tuned and base) are at most 1/8 of physical memory. Its mapped pages are clean page
    /// cache, which the kernel can still reclaim under pressure.
    public static func keepsMapped(_ tensors: [SourceTensor]) -> Bool {
        let bytes = tensors.reduce(0) { $0 + $1.data.bytes.count + ($1.base?.bytes.count ?? 0) }
        return bytes <= physicalMemory / 8
    }

    static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 0
    }()

    deinit {
        values.deallocate()
        scratch.deallocate()
    }

    /// Calls `body(offset, chunk)` for consecutive chunks of `tensor`'s residual, covering `range`
    /// (all of it by default).
    public func forEach<E: Error>(_ tensor: SourceTensor, range: Range<Int>? = nil,
                                  _ body: (Int, UnsafeBufferPointer<Float>) throws(E) -> Void) throws(E) {
        let range = range ?? 0..<tensor.count
        let inPlace = tensor.data.dtype == .f32 && tensor.initRule == .zero
            && Int(bitPattern: tensor.data.bytes.baseAddress) % MemoryLayout<Float>.alignment == 0
        let elementsPerRelease = Self.releaseInterval / tensor.data.dtype.byteSize
        var start = range.lowerBound
        var releasedUpTo = start
        while start < range.upperBound {
            let len = min(Self.chunkSize, range.upperBound - start)
            if inPlace {
                let base = tensor.data.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
                try body(start, UnsafeBufferPointer(start: base + start, count: len))
            } else {
                let chunk = UnsafeMutableBufferPointer(rebasing: values[0..<len])
                tensor.loadResidual(from: start, into: chunk, scratch: scratch)
                try body(start, UnsafeBufferPointer(chunk))
            }
            start += len
            if releasesPages && (start - releasedUpTo >= elementsPerRelease || start == range.upperBound) {
                tensor.releasePages(elements: releasedUpTo..<start)
                releasedUpTo = start
            }
        }
    }
}
