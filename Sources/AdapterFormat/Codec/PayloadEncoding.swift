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
        let maskBytes = (count + 7) / 8
        guard raw.count >= maskBytes else { return (nil, "payload shorter than its mask") }
        let mask = [UInt8](raw[0..<maskBytes])
        var ones = 0
        for b in mask { ones += b.nonzeroBitCount }
        guard ones == nonzero else { return (nil, "mask has \(ones) set bits, the index says \(nonzero)") }
        if count % 8 != 0, let last = mask.last, last &>> UInt8(count % 8) != 0 {
            return (nil, "mask has bits set past the last value")
        }
        switch encoding {
        case .ternaryBitmap:
            let signs = [UInt8](raw[maskBytes...])
            guard signs.count == (nonzero + 7) / 8 else { return (nil, "sign bytes \(signs.count), expected \((nonzero + 7) / 8)") }
            if nonzero % 8 != 0, let last = signs.last, last &>> UInt8(nonzero % 8) != 0 {
                return (nil, "sign bits set past the last kept value")
            }
            return (TernaryCode(count: count, keptCount: kept, nonzeroCount: nonzero, mask: mask, signs: signs), nil)
        case .sparseFloat:
            guard raw.count - maskBytes == nonzero * 4 else { return (nil, "value bytes do not match the kept count") }
            var values = [Float](repeating: 0, count: nonzero)
            for i in 0..<nonzero {
                values[i] = Float(bitPattern: raw.readLE(UInt32.self, at: maskBytes + 4 * i)!)
            }
            guard values.allSatisfy({ $0.isFinite }) else { return (nil, "stored value is NaN or Inf") }
            return (TernaryCode(count: count, keptCount: kept, nonzeroCount: nonzero, mask: mask, signs: [], values: values), nil)
        case .raw, .ternaryGap:
            return (nil, "payload is not a mask-and-signs code")
        }
    }
}
