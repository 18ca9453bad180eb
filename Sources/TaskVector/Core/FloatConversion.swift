/// Conversions between `Float` and the 16-bit float formats, bit-exact and branch-light.
///
/// Narrowing rounds to nearest, ties to even. NaN stays NaN (quiet, sign kept), ±Inf and ±0 are
/// preserved, and subnormals on either side are handled exactly.
public enum FloatConversion {
    /// Widens a bfloat16 bit pattern to `Float` (exact).
    @inlinable @inline(__always)
    public static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) &<< 16)
    }

    /// Narrows a `Float` to a bfloat16 bit pattern, rounding to nearest even.
    @inlinable @inline(__always)
    public static func bf16(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if (bits & 0x7FFF_FFFF) > 0x7F80_0000 {  // NaN: keep sign, force quiet bit
            return UInt16(truncatingIfNeeded: bits &>> 16) | 0x0040
        }
        let rounding: UInt32 = 0x7FFF &+ ((bits &>> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) &>> 16)
    }

    /// Widens an IEEE binary16 bit pattern to `Float` (exact, subnormals included).
    @inlinable @inline(__always)
    public static func float(fromF16 bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) &<< 16
        let exponent = UInt32(bits &>> 10) & 0x1F
        let mantissa = UInt32(bits & 0x03FF)
        if exponent == 0x1F {  // Inf / NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa &<< 13))
        }
        if exponent == 0 {
            // ±0 or subnormal: value = mantissa · 2^-24, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        return Float(bitPattern: sign | ((exponent &+ 112) &<< 23) | (mantissa &<< 13))
    }

    /// Narrows a `Float` to an IEEE binary16 bit pattern, rounding to nearest even.
    @inlinable @inline(__always)
    public static func f16(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits &>> 16) & 0x8000)
        let absBits = bits & 0x7FFF_FFFF
        if absBits >= 0x7F80_0000 {  // Inf or NaN
            if absBits == 0x7F80_0000 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: (absBits &>> 13) & 0x01FF)
        }
        if absBits >= 0x477F_F000 {  // rounds to >= 65520 → Inf
            return sign | 0x7C00
        }
        if absBits >= 0x3880_0000 {  // normal half range (>= 2^-14)
            let rounded = absBits &+ 0x0FFF &+ ((absBits &>> 13) & 1)
            return sign | UInt16(truncatingIfNeeded: (rounded &- 0x3800_0000) &>> 13)
        }
        // Subnormal half (or zero): value / 2^-24, rounded to nearest even, via Float arithmetic.
        // Multiplying by 2^24 is exact; adding 2^23·1.5 forces rounding at the integer bit (RNE).
        let scaled = Float(bitPattern: absBits) * 0x1p24
        let magic: Float = 12_582_912  // 1.5 · 2^23
        let integer = (scaled + magic).bitPattern &- magic.bitPattern
        return sign | UInt16(truncatingIfNeeded: integer)
    }
}
