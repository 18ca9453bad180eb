import Quantize
import TaskVector

/// The payload encodings a container can hold. The id is stored per tensor in the index; the exact
/// byte layout of each is in docs/FORMAT.md.
public enum PayloadEncoding: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// The tensor's original little-endian bytes (any dtype), zstd-compressed. Lossless.
    case raw = 0
    /// Ternary: mask (one bit per value) then signs (one bit per set mask bit), zstd-compressed.
    case ternaryBitmap = 1
    /// Sparse: mask then the kept values as little-endian binary32, zstd-compressed.
    case sparseFloat = 2
    /// Ternary: a ``GapCoder`` stream (signs, then Golomb / byte-Huffman runs over the mask), stored as
    /// it is — no zstd frame around it.
    case ternaryGap = 3

    /// Whether the stored payload is a zstd frame of the raw bytes (every encoding but the gap coder).
    public var isZstdFramed: Bool { self != .ternaryGap }

    public var description: String {
        switch self {
        case .raw: "raw"
        case .ternaryBitmap: "ternary-bitmap"
        case .sparseFloat: "sparse-f32"
        case .ternaryGap: "ternary-gap"
        }
    }

    /// Bytes the decoded payload must have, from the index's counts.
    static func rawLength(_ encoding: PayloadEncoding, count: Int, nonzero: Int, dtype: DType) -> Int? {
        let maskBytes = (count + 7) / 8
        switch encoding {
        case .raw:
            let (n, o) = count.multipliedReportingOverflow(by: dtype.byteSize)
            return o ? nil : n
        case .ternaryBitmap: return maskBytes + (nonzero + 7) / 8
        case .sparseFloat:
            let (n, o) = nonzero.multipliedReportingOverflow(by: 4)
            return o ? nil : maskBytes + n
        case .ternaryGap: return nil  // self-delimiting; its raw length is its stored length
        }
    }

    /// Serializes a ternary or sparse code to the payload's raw bytes.
    static func rawBytes(of code: TernaryCode) -> [UInt8] {
        var out = code.mask
        if code.values.isEmpty {
            out += code.signs
        } else {
            out.reserveCapacity(out.count + code.values.count * 4)
            for v in code.values { out.appendLE(v.bitPattern) }
        }
        return out
    }

    /// Parses a decoded ternary or sparse payload, checking every count against the index.
    static func code(from raw: UnsafeRawBufferPointer, encoding: PayloadEncoding, count: Int, kept: Int,
                     nonzero: Int) -> (TernaryCode?, String?) {
        switch encoding {
        case .ternaryBitmap:
            switch bitmap(raw, count: count, nonzero: nonzero) {
            case .success(let parts):
                return (TernaryCode(count: count, keptCount: kept, nonzeroCount: nonzero, mask: Array(parts.mask),
                                    signs: Array(parts.signs)), nil)
            case .failure(let problem): return (nil, problem.message)
            }
        case .sparseFloat:
            let maskBytes = (count + 7) / 8
            if let problem = checkMask(raw, count: count, nonzero: nonzero) { return (nil, problem) }
            guard raw.count - maskBytes == nonzero * 4 else { return (nil, "value bytes do not match the kept count") }
            var values = [Float](repeating: 0, count: nonzero)
            for i in 0..<nonzero {
                values[i] = Float(bitPattern: raw.readLE(UInt32.self, at: maskBytes + 4 * i)!)
            }
            guard values.allSatisfy({ $0.isFinite }) else { return (nil, "stored value is NaN or Inf") }
            return (TernaryCode(count: count, keptCount: kept, nonzeroCount: nonzero, mask: Array(raw[0..<maskBytes]), signs: [],
                                values: values), nil)
        case .raw, .ternaryGap:
            return (nil, "payload is not a mask-and-signs code")
        }
    }

    /// A problem with a decoded payload, in words.
    struct Problem: Error {
        let message: String
    }

    /// The mask and signs of a decoded `ternary-bitmap` payload, checked against the index's counts,
    /// without copying them.
    static func bitmap(_ raw: UnsafeRawBufferPointer, count: Int, nonzero: Int)
        -> Result<(mask: UnsafeRawBufferPointer, signs: UnsafeRawBufferPointer), Problem>
    {
        if let problem = checkMask(raw, count: count, nonzero: nonzero) { return .failure(Problem(message: problem)) }
        let maskBytes = (count + 7) / 8
        let signs = UnsafeRawBufferPointer(rebasing: raw[maskBytes...])
        guard signs.count == (nonzero + 7) / 8 else {
            return .failure(Problem(message: "sign bytes \(signs.count), expected \((nonzero + 7) / 8)"))
        }
        if nonzero % 8 != 0, let last = signs.last, last &>> UInt8(nonzero % 8) != 0 {
            return .failure(Problem(message: "sign bits set past the last kept value"))
        }
        return .success((UnsafeRawBufferPointer(rebasing: raw[0..<maskBytes]), signs))
    }

    /// Checks that `raw` starts with a mask of `count` bits with exactly `nonzero` set, none past
    /// `count`; returns the problem, or nil.
    static func checkMask(_ raw: UnsafeRawBufferPointer, count: Int, nonzero: Int) -> String? {
        let maskBytes = (count + 7) / 8
        guard raw.count >= maskBytes else { return "payload shorter than its mask" }
        var ones = 0
        var i = 0
        while i &+ 8 <= maskBytes {
            ones &+= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self).nonzeroBitCount
            i &+= 8
        }
        while i < maskBytes {
            ones &+= raw[i].nonzeroBitCount
            i &+= 1
        }
        guard ones == nonzero else { return "mask has \(ones) set bits, the index says \(nonzero)" }
        if count % 8 != 0, raw[maskBytes - 1] &>> UInt8(count % 8) != 0 {
            return "mask has bits set past the last value"
        }
        return nil
    }
}
