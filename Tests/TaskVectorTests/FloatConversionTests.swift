import CompeftTestSupport
import TaskVector
import Testing

@Suite struct FloatConversionTests {
    /// Round to nearest even onto the bf16 grid, computed through Double as a plain reference.
    static func referenceBF16(_ x: Float) -> UInt16 {
        if x.isNaN { return UInt16(truncatingIfNeeded: x.bitPattern >> 16) | 0x40 }
        let bits = x.bitPattern
        let lower = UInt16(truncatingIfNeeded: bits >> 16)
        let down = Float(bitPattern: UInt32(lower) << 16)
        let up = Float(bitPattern: (UInt32(lower) + 1) << 16)  // next representable away from zero
        let dDown = abs(Double(x) - Double(down))
        // Past the largest finite bf16 the next grid point is 2^128 (IEEE rounds with an unbounded exponent, then overflows).
        let upValue = up.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(up)
        let dUp = abs(upValue - Double(x))
        if dDown < dUp { return lower }
        if dUp < dDown { return lower + 1 }
        return lower & 1 == 0 ? lower : lower + 1
    }

    @Test func everyF16PatternWidensLikeFloat16AndNarrowsBack() {
        for bits in 0...UInt16.max {
            let wide = FloatConversion.float(fromF16: bits)
            let expected = Float(Float16(bitPattern: bits))
            if expected.isNaN {
                #expect(wide.isNaN, "bits \(bits)")
                #expect(FloatConversion.f16(from: wide) & 0x7C00 == 0x7C00 && FloatConversion.f16(from: wide) & 0x3FF != 0)
            } else {
                #expect(wide.bitPattern == expected.bitPattern, "bits \(bits)")
                #expect(FloatConversion.f16(from: wide) == bits, "bits \(bits)")
            }
        }
    }

    @Test func narrowingToF16RoundsToNearestEvenLikeTheCompiler() {
        var g = SplitMix64(seed: 42)
        var samples: [Float] = [0, -0.0, .infinity, -.infinity, 65504, 65519.99, 65520, -65520, 6.1035156e-05,
                                5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 8.940697e-08, .leastNonzeroMagnitude, 1e-45]
        for _ in 0..<200_000 { samples.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))) }
        // Values exactly halfway between adjacent halves, across the subnormal and normal ranges.
        for bits in stride(from: UInt16(0), to: 0x7BFF, by: 97) {
            let a = Float(Float16(bitPattern: bits))
            let b = Float(Float16(bitPattern: bits + 1))
            samples.append((a + b) / 2)
            samples.append(-(a + b) / 2)
        }
        for x in samples where !x.isNaN {
            #expect(FloatConversion.f16(from: x) == Float16(x).bitPattern, "x = \(x) bits \(x.bitPattern)")
        }
    }

    @Test func bf16RoundsToNearestEvenAndKeepsSpecials() {
        var g = SplitMix64(seed: 7)
        var samples: [Float] = [0, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                -.leastNormalMagnitude, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                                Float(bitPattern: 0x7F7F_FFFF)]
        for _ in 0..<200_000 { samples.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))) }
        for x in samples {
            let got = FloatConversion.bf16(from: x)
            if x.isNaN {
                #expect(FloatConversion.float(fromBF16: got).isNaN)
            } else {
                #expect(got == Self.referenceBF16(x), "x bits \(x.bitPattern)")
            }
        }
        for bits in 0...UInt16.max {
            let wide = FloatConversion.float(fromBF16: bits)
            if !wide.isNaN { #expect(FloatConversion.bf16(from: wide) == bits) }
        }
    }
}


