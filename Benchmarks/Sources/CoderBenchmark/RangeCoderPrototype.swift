import Quantize

/// An adaptive binary range coder in the LZMA style (one context, 11-bit probability, adaptation
/// shift 5), coding one decision per mask position, with the signs stored verbatim.
///
/// Not part of compeft: it is here so the benchmark measures, beside ``GapCoder``, what an adaptive
/// arithmetic coder gains in size and costs in decode speed.
enum RangeCoderPrototype {
    static func encode(_ code: TernaryCode) -> [UInt8] {
        var out: [UInt8] = code.signs
        var low: UInt64 = 0
        var range: UInt32 = 0xFFFF_FFFF
        var cache: UInt8 = 0
        var cacheSize = 1
        var probability: UInt32 = 1024
        func shiftLow() {
            if low < 0xFF00_0000 || low >= 1 << 32 {
                let carry = UInt8(truncatingIfNeeded: low >> 32)
                var byte = cache
                repeat {
                    out.append(byte &+ carry)
                    byte = 0xFF
                    cacheSize -= 1
                } while cacheSize != 0
                cache = UInt8(truncatingIfNeeded: low >> 24)
            }
            cacheSize += 1
            low = (low & 0x00FF_FFFF) << 8
        }
        for i in 0..<code.count {
            let bit = code.mask[i >> 3] >> UInt8(i & 7) & 1
            let bound = (range >> 11) &* probability
            if bit == 0 {
                range = bound
                probability += (2048 - probability) >> 5
            } else {
                low += UInt64(bound)
                range -= bound
                probability -= probability >> 5
            }
            while range < 1 << 24 {
                range <<= 8
                shiftLow()
            }
        }
        for _ in 0..<5 { shiftLow() }
        return out
    }

    /// Decodes into bf16 ±scale; `out` must be zeroed.
    static func decode(_ bytes: [UInt8], count: Int, nonzero: Int, positive: UInt16, into out: UnsafeMutableBufferPointer<UInt16>) {
        let signBytes = (nonzero + 7) / 8
        bytes.withUnsafeBufferPointer { bytes in
            var next = signBytes + 1
            var code: UInt32 = 0
            for _ in 0..<4 {
                code = code << 8 | UInt32(next < bytes.count ? bytes[next] : 0)
                next += 1
            }
            var range: UInt32 = 0xFFFF_FFFF
            var probability: UInt32 = 1024
            var k = 0
            for i in 0..<count {
                let bound = (range >> 11) &* probability
                if code < bound {
                    range = bound
                    probability += (2048 - probability) >> 5
                } else {
                    code -= bound
                    range -= bound
                    probability -= probability >> 5
                    let negative = UInt16(bytes[k >> 3] >> UInt8(k & 7) & 1)
                    out[i] = positive | negative << 15
                    k += 1
                }
                if range < 1 << 24 {
                    range <<= 8
                    code = code << 8 | UInt32(next < bytes.count ? bytes[next] : 0)
                    next += 1
                }
            }
            precondition(k == nonzero, "range coder prototype decoded \(k) kept values, expected \(nonzero)")
        }
    }
}
