/// The xoshiro256** generator (Blackman and Vigna), seeded through SplitMix64: the random source
/// behind DARE's drop masks.
///
/// The sequence is fixed by this file, not by the Swift standard library, so a seed gives the same
/// masks on every platform and in every release. ``init(seed:)`` runs SplitMix64 from `seed` and
/// takes its first four outputs as the state (never all zero: SplitMix64's output function is a
/// bijection of four distinct states).
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    /// Seeds the state with the first four outputs of SplitMix64 started at `seed`.
    public init(seed: UInt64) {
        var splitMix = seed
        s0 = Self.splitMix64(&splitMix)
        s1 = Self.splitMix64(&splitMix)
        s2 = Self.splitMix64(&splitMix)
        s3 = Self.splitMix64(&splitMix)
    }

    /// A generator in the given state (for reference vectors).
    ///
    /// - Precondition: not all four words are zero.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "xoshiro's state must not be all zero")
        (s0, s1, s2, s3) = state
    }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) &<< 7 | (s1 &* 5) &>> 57) &* 9
        let t = s1 &<< 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 &<< 45 | s3 &>> 19
        return result
    }

    /// A uniform `Double` in [0, 1): the top 53 bits of ``next()`` times 2⁻⁵³.
    @inlinable
    public mutating func nextUnitInterval() -> Double {
        Double(next() &>> 11) * 0x1p-53
    }

    /// One step of SplitMix64: advances `state` by the golden-ratio increment and returns its mix.
    public static func splitMix64(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix64(state)
    }

    /// SplitMix64's output function, a bijection on `UInt64`.
    public static func mix64(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }
}
