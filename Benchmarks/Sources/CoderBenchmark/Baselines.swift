#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Quantize

/// The v1 payload: mask bytes then sign bytes.
func v1Bytes(_ code: TernaryCode) -> [UInt8] { code.mask + code.signs }

/// Two bits a value, four values a byte, value i in bits 2(i mod 4)...: 0 zero, 1 positive, 2 negative.
func twoBitBytes(_ code: TernaryCode) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: (code.count + 3) / 4)
    var k = 0
    for i in 0..<code.count where code.mask[i >> 3] >> UInt8(i & 7) & 1 == 1 {
        let negative = code.signs[k >> 3] >> UInt8(k & 7) & 1
        out[i >> 2] |= (1 + negative) << UInt8((i & 3) * 2)
        k += 1
    }
    return out
}

/// Expands a v1 payload (mask then signs) into bf16 ±scale.
func expandV1(_ raw: UnsafeRawBufferPointer, count: Int, positive: UInt16, into out: UnsafeMutableBufferPointer<UInt16>) {
    out.update(repeating: 0)
    let maskBytes = (count + 7) / 8
    let signs = raw.baseAddress! + maskBytes
    var k = 0
    var byte = 0
    while byte < maskBytes {
        var word: UInt64
        let width = min(8, maskBytes - byte)
        if width == 8 {
            word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: byte, as: UInt64.self))
        } else {
            word = 0
            for b in 0..<width { word |= UInt64(raw[byte + b]) << UInt64(8 * b) }
        }
        while word != 0 {
            let i = byte * 8 + word.trailingZeroBitCount
            word &= word &- 1
            let negative = (signs.load(fromByteOffset: k >> 3, as: UInt8.self) >> UInt8(k & 7)) & 1
            out[i] = positive | UInt16(negative) << 15
            k += 1
        }
        byte += 8
    }
}

/// Expands a two-bit packing into bf16 ±scale, four values per table lookup.
func expandTwoBit(_ packed: UnsafeRawBufferPointer, count: Int, positive: UInt16, into out: UnsafeMutableBufferPointer<UInt16>) {
    var table = [UInt64](repeating: 0, count: 256)
    for b in 0..<256 {
        for j in 0..<4 {
            let code = (b >> (2 * j)) & 3
            let v: UInt16 = code == 1 ? positive : code == 2 ? positive | 0x8000 : 0
            table[b] |= UInt64(v) << UInt64(16 * j)
        }
    }
    table.withUnsafeBufferPointer { table in
        let raw = UnsafeMutableRawPointer(out.baseAddress!)
        let whole = count / 4
        for i in 0..<whole {
            raw.storeBytes(of: table[Int(packed[i])].littleEndian, toByteOffset: i * 8, as: UInt64.self)
        }
        for i in (whole * 4)..<count {
            out[i] = UInt16(truncatingIfNeeded: table[Int(packed[i >> 2])] >> UInt64(16 * (i & 3)))
        }
    }
}

/// The size of the best single-parameter Golomb code over the whole tensor (signs, gaps and a
/// 3-byte header): the static coder that per-block adaptation has to beat.
func staticGolombBytes(_ code: TernaryCode) -> Int {
    var gaps: [Int] = []
    gaps.reserveCapacity(code.nonzeroCount)
    var next = 0
    for i in 0..<code.count where code.mask[i >> 3] >> UInt8(i & 7) & 1 == 1 {
        gaps.append(i - next)
        next = i + 1
    }
    gaps.append(code.count - next)
    let p = max(Double(code.nonzeroCount), 0.5) / Double(code.count)
    let center = max(1, Int((log(2 - p) / -log1p(-p)).rounded(.up)))
    var best = Int.max
    for m in Set((0...16).map { max(1, center * (8 + $0) / 16) }) {
        let b = Int.bitWidth - (m - 1).leadingZeroBitCount
        let t = (1 << b) - m
        var bits = 0
        for g in gaps {
            let r = g % m
            bits += g / m + 1 + (m == 1 ? 0 : (r < t ? b - 1 : b))
        }
        best = min(best, bits)
    }
    return 3 + code.signs.count + (best + 7) / 8
}

/// The ideal length of an adaptive binary arithmetic coder (Krichevsky–Trofimov estimator over
/// the whole mask, no finite-precision loss) plus the sign bits, in bytes.
func adaptiveArithmeticIdealBytes(count: Int, nonzero: Int) -> Double {
    let d = Double(count)
    let n = Double(nonzero)
    let log2KT = (lgamma(n + 0.5) + lgamma(d - n + 0.5) - log(Double.pi) - lgamma(d + 1)) / log(2.0)
    return (-log2KT + n) / 8
}
