// Lane helpers of the run planner's `SIMD16<Float>` cost vectors.

extension GapCoder {
    /// The lane-wise lesser of two vectors (the costs are never NaN). A plain compare and select:
    /// the standard library's `pointwiseMin` goes lane by lane for floating point.
    @inline(__always)
    static func lesser(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        a.replacing(with: b, where: b .< a)
    }

    /// The least lane, by halving.
    @inline(__always)
    static func minimum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .< v.lowHalf)
        let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .< a.lowHalf)
        let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .< b.lowHalf)
        return Swift.min(c[0], c[1])
    }

    /// Bit i set when lane i of `difference` is negative (its sign bit).
    @inline(__always)
    static func switchFlags(_ difference: SIMD16<Float>) -> UInt64 {
        gatherBits(SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(difference, to: SIMD16<UInt32>.self) &>> 31))
    }

    /// Bit i set when byte i is 1 (bytes are 0 or 1): eight bytes to a bit each by one multiplication.
    @inline(__always)
    static func gatherBits(_ bytes: SIMD16<UInt8>) -> UInt64 {
        let halves = unsafeBitCast(bytes, to: SIMD2<UInt64>.self)
        let gather: UInt64 = 0x0102_0408_1020_4080
        return (halves[0] &* gather) &>> 56 | ((halves[1] &* gather) &>> 56) &<< 8
    }

    /// The first of 64 lanes equal to `value` (which one of them holds).
    @inline(__always)
    static func firstLane(of value: Float,
                          in lanes: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) -> Int {
        let v = SIMD16<Float>(repeating: value)
        func equal(_ part: SIMD16<Float>) -> UInt64 {
            gatherBits(SIMD16<UInt8>(truncatingIfNeeded: SIMD16<Int32>(repeating: 0).replacing(with: 1, where: part .== v)))
        }
        let all = equal(lanes.0) | equal(lanes.1) &<< 16 | equal(lanes.2) &<< 32 | equal(lanes.3) &<< 48
        precondition(all != 0, "no lane holds the minimum")
        return all.trailingZeroBitCount
    }
}
