internal import CZstd
import Foundation

/// An error from libzstd, with its message.
public struct ZstdError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { "zstd: \(message)" }

    init(code: Int) {
        message = String(cString: ZSTD_getErrorName(code))
    }

    init(_ message: String) { self.message = message }
}

/// Every call compeft makes into libzstd.
enum Zstd {
    /// zstd's worst-case expansion: a 128 KiB RLE block costs a few bytes, so one stored byte never
    /// yields more than this many decoded bytes. Used to refuse lying lengths before allocating.
    static let maxExpansion = 1 << 16

    /// Compresses `source` into one frame with its content size (no frame checksum: the container
    /// checks every stored payload with XXH64).
    ///
    /// - Parameter dictionary: a raw-content dictionary (zstd's "prefix") the frame may refer to; the
    ///   frame names no dictionary id, so its reader must be given the same bytes.
    ///
    /// The corresponding C functions are `ZSTD_compress2`, `ZSTD_CCtx_setParameter` and `ZSTD_CCtx_refPrefix`.
    static func compress(_ source: UnsafeRawBufferPointer, level: Int32, dictionary: [UInt8]? = nil) throws(ZstdError) -> [UInt8] {
        // Small inputs (most tensors of a large adapter) reuse a pooled context: creating one and sizing
        // its tables at level 19 costs more than compressing a few hundred bytes. Large inputs take a
        // fresh context, so no table sized for a large input outlives its call.
        if source.count <= pooledInputLimit {
            let raw = try contextPool.take()
            defer { contextPool.give(raw) }
            return try compress(source, level: level, dictionary: dictionary, context: raw)
        }
        let context = try CompressionContext()
        return try compress(source, level: level, dictionary: dictionary, context: context.raw)
    }

    /// Inputs up to this size are compressed with a pooled context (their tables stay small: zstd sizes
    /// them by the input).
    static let pooledInputLimit = 64 << 10

    private static let contextPool = ContextPool()

    /// Compresses `source` with `context`, whose parameters are reset first.
    ///
    /// The corresponding C functions are `ZSTD_CCtx_reset`, `ZSTD_CCtx_setParameter`, `ZSTD_CCtx_refPrefix`
    /// and `ZSTD_compress2`.
    private static func compress(_ source: UnsafeRawBufferPointer, level: Int32, dictionary: [UInt8]?,
                                 context: OpaquePointer) throws(ZstdError) -> [UInt8] {
        func set(_ parameter: ZSTD_cParameter, _ value: Int32) throws(ZstdError) {
            let r = ZSTD_CCtx_setParameter(context, parameter, value)
            if ZSTD_isError(r) != 0 { throw ZstdError(code: r) }
        }
        let reset = ZSTD_CCtx_reset(context, ZSTD_reset_session_and_parameters)
        if ZSTD_isError(reset) != 0 { throw ZstdError(code: reset) }
        try set(ZSTD_c_compressionLevel, level)
        try set(ZSTD_c_checksumFlag, 0)  // the index holds an XXH64 of every stored payload
        try set(ZSTD_c_contentSizeFlag, 1)
        let bound = ZSTD_compressBound(source.count)
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes { dst in
            // The prefix must stay valid until the frame is written: both calls run inside its closure.
            (dictionary ?? []).withUnsafeBytes { prefix in
                if dictionary != nil {
                    let r = ZSTD_CCtx_refPrefix(context, prefix.baseAddress, prefix.count)
                    if ZSTD_isError(r) != 0 { return r }
                }
                return ZSTD_compress2(context, dst.baseAddress, dst.count, source.baseAddress, source.count)
            }
        }
        if ZSTD_isError(written) != 0 { throw ZstdError(code: written) }
        out.removeLast(out.count - written)
        return out
    }

    /// The fewest bytes any zstd frame takes: a 6-byte frame header and one 3-byte block header. A
    /// payload this short or shorter cannot be beaten by a frame.
    static let minimumFrameSize = 9

    /// Decompresses one frame that must decode to exactly `destination.count` bytes.
    ///
    /// - Parameter dictionary: the raw-content dictionary the frame was compressed with, if any.
    ///
    /// The corresponding C functions are `ZSTD_getFrameContentSize`, `ZSTD_decompressDCtx` and
    /// `ZSTD_decompress_usingDict`.
    static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer,
                           dictionary: [UInt8]? = nil) throws(ZstdError) {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw ZstdError("not a zstd frame") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(destination.count) {
            throw ZstdError("frame declares \(declared) bytes, the index \(destination.count)")
        }
        let frameSize = ZSTD_findFrameCompressedSize(source.baseAddress, source.count)
        if ZSTD_isError(frameSize) != 0 { throw ZstdError(code: frameSize) }
        if frameSize != source.count { throw ZstdError("\(source.count - frameSize) trailing bytes after the frame") }
        guard let context = ZSTD_createDCtx() else { throw ZstdError("out of memory") }
        defer { ZSTD_freeDCtx(context) }
        let got = if let dictionary {
            dictionary.withUnsafeBytes { d in
                ZSTD_decompress_usingDict(context, destination.baseAddress, destination.count, source.baseAddress, source.count,
                                          d.baseAddress, d.count)
            }
        } else {
            ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
        }
        if ZSTD_isError(got) != 0 { throw ZstdError(code: got) }
        if got != destination.count { throw ZstdError("frame decoded to \(got) bytes, expected \(destination.count)") }
    }

    /// Checks, from the frame's own headers and before anything is allocated, that `source` is one
    /// frame that can decode to exactly `length` bytes.
    ///
    /// The corresponding C functions are `ZSTD_getFrameContentSize` and `ZSTD_decompressBound`.
    static func checkDecodedLength(_ source: UnsafeRawBufferPointer, is length: Int) throws(ZstdError) {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw ZstdError("not a zstd frame") }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(length) {
            throw ZstdError("frame declares \(declared) bytes, the index \(length)")
        }
        let bound = ZSTD_decompressBound(source.baseAddress, source.count)
        if bound == ZSTD_CONTENTSIZE_ERROR { throw ZstdError("frame is malformed") }
        if bound < UInt64(length) { throw ZstdError("frame can decode to at most \(bound) bytes, the index says \(length)") }
    }

    /// The content size a frame declares, checked against what its blocks can produce, before anything
    /// is allocated.
    ///
    /// - Throws: ``ZstdError`` when `source` is not a frame, declares no content size, or declares more
    ///   than `limit` bytes or more than its blocks can hold.
    ///
    /// The corresponding C functions are `ZSTD_getFrameContentSize` and `ZSTD_decompressBound`.
    static func declaredLength(_ source: UnsafeRawBufferPointer, limit: Int) throws(ZstdError) -> Int {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw ZstdError("not a zstd frame") }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN { throw ZstdError("frame does not declare its decoded size") }
        if declared > UInt64(limit) { throw ZstdError("frame declares \(declared) bytes, more than \(limit)") }
        let length = Int(declared)
        try checkDecodedLength(source, is: length)
        return length
    }

    /// The libzstd version string, e.g. "1.5.4".
    static var version: String { String(cString: ZSTD_versionString()) }

    /// Compression contexts for small inputs, kept for reuse across calls and threads (at most
    /// ``capacity`` are kept; one in use is never shared).
    final class ContextPool: @unchecked Sendable {
        static let capacity = 64
        private var free: [OpaquePointer] = []
        private let lock = NSLock()

        /// A context from the pool, or a new one.
        ///
        /// The corresponding C function is `ZSTD_createCCtx`.
        func take() throws(ZstdError) -> OpaquePointer {
            lock.lock()
            let pooled = free.popLast()
            lock.unlock()
            if let pooled { return pooled }
            guard let raw = ZSTD_createCCtx() else { throw ZstdError("out of memory") }
            return raw
        }

        /// Returns a context to the pool (or frees it when the pool is full).
        ///
        /// The corresponding C function is `ZSTD_freeCCtx`.
        func give(_ raw: OpaquePointer) {
            lock.lock()
            let kept = free.count < Self.capacity
            if kept { free.append(raw) }
            lock.unlock()
            if !kept { ZSTD_freeCCtx(raw) }
        }
    }

    /// A `ZSTD_CCtx`, freed exactly once.
    struct CompressionContext: ~Copyable {
        let raw: OpaquePointer
        init() throws(ZstdError) {
            guard let raw = ZSTD_createCCtx() else { throw ZstdError("out of memory") }
            self.raw = raw
        }
        func set(_ parameter: ZSTD_cParameter, _ value: Int32) throws(ZstdError) {
            let r = ZSTD_CCtx_setParameter(raw, parameter, value)
            if ZSTD_isError(r) != 0 { throw ZstdError(code: r) }
        }
        deinit { ZSTD_freeCCtx(raw) }
    }
}
