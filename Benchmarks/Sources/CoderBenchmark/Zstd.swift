import CZstdBenchmark

/// Every libzstd call this benchmark makes.
enum Zstd {
    /// One frame at `level`. The corresponding C function is `ZSTD_compress`.
    static func compress(_ source: [UInt8], level: Int32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(source.count))
        let written = source.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, level)
            }
        }
        precondition(ZSTD_isError(written) == 0, String(cString: ZSTD_getErrorName(written)))
        out.removeLast(out.count - written)
        return out
    }

    /// Decompresses one frame into exactly `destination.count` bytes. The corresponding C function
    /// is `ZSTD_decompress`.
    static func decompress(_ frame: [UInt8], into destination: UnsafeMutableRawBufferPointer) {
        let got = frame.withUnsafeBytes { src in
            ZSTD_decompress(destination.baseAddress, destination.count, src.baseAddress, src.count)
        }
        precondition(ZSTD_isError(got) == 0 && got == destination.count, "zstd decode failed")
    }

    static var version: String { String(cString: ZSTD_versionString()) }
}
