#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A Golomb code for gaps, indexed by a small integer that the stream carries per run.
///
/// Index `k` < 32 gives modulus m = k + 1; above that m = (32 + 2f) · 2^e with e = (k − 32) / 16 and
/// f = (k − 32) mod 16, so the moduli step by at most 6.25 % up to m ≈ 2^27. A gap g ≥ 0 is coded as
/// q = ⌊g / m⌋ one bits, a zero bit, then r = g mod m in truncated binary: with b = ⌈log₂ m⌉ and
/// t = 2^b − m, r < t takes the b − 1 bit field r; r ≥ t takes the b − 1 bit field ⌊(r + t) / 2⌋
/// followed by the bit (r + t) mod 2. Code length is q + b or q + b + 1 bits, the optimal prefix code
/// for a geometric gap distribution when m ≈ −ln 2 / ln(1 − p).
struct GolombParameter: Equatable {
    /// Indices the stream may carry.
    static let indices = 0..<400

    let index: Int
    /// The modulus m ≥ 1.
    let modulus: Int
    /// b − 1 for m ≥ 2, and 0 for m = 1.
    let shortWidth: Int
    /// t = 2^b − m for m ≥ 2; for m = 1 it is 1, which makes every remainder the empty field 0.
    let threshold: Int
    /// 2^64 / m rounded up, for dividing 32-bit gaps by m with one multiplication (m ≥ 2).
    let reciprocal: UInt64

    init(index: Int) {
        precondition(Self.indices.contains(index))
        self.index = index
        let m: Int
        if index < 32 {
            m = index &+ 1
        } else {
            let e = (index &- 32) / 16
            let f = (index &- 32) % 16
            m = (32 &+ 2 &* f) &<< e
        }
        modulus = m
        if m == 1 {
            shortWidth = 0
            threshold = 1
            reciprocal = 0
        } else {
            let b = Int.bitWidth &- (m &- 1).leadingZeroBitCount
            shortWidth = b &- 1
            threshold = (1 &<< b) &- m
            reciprocal = UInt64.max / UInt64(m) &+ 1
        }
    }

    /// The index whose modulus is nearest the optimal m = ⌈ln(2 − p) / −ln(1 − p)⌉ for gaps between
    /// values kept independently with probability `p` (0 < p < 1).
    static func index(forDensity p: Double) -> Int {
        let optimal = (log(2 - p) / -log1p(-p)).rounded(.up)
        guard optimal.isFinite, optimal < 0x1p27 else { return indices.upperBound - 1 }
        let m = Int(max(1, optimal))
        if m <= 32 { return m - 1 }
        var e = (Int.bitWidth - m.leadingZeroBitCount) - 6
        var f = ((m + (1 << e)) >> (e + 1)) - 16  // (m / 2^e − 32) / 2, rounded
        if f == 16 { e += 1; f = 0 }
        return min(indices.upperBound - 1, 32 + 16 * e + f)
    }

    /// ⌊g / m⌋ and g mod m for g ≥ 0; one multiplication when g < 2^32.
    @inline(__always)
    func divide(_ g: Int) -> (quotient: Int, remainder: Int) {
        if modulus == 1 { return (g, 0) }
        if g >= 1 << 32 { return g.quotientAndRemainder(dividingBy: modulus) }
        let q = Int(truncatingIfNeeded: reciprocal.multipliedFullWidth(by: UInt64(truncatingIfNeeded: g)).high)
        return (q, g &- q &* modulus)
    }

    /// Bits of the code word for gap g ≥ 0.
    @inline(__always)
    func length(_ g: Int) -> Int {
        let (q, r) = divide(g)
        return q &+ 1 &+ shortWidth &+ (r >= threshold ? 1 : 0)
    }

    /// The remainder field for r and its width in bits.
    @inline(__always)
    func remainderField(_ r: Int) -> (value: UInt64, width: Int) {
        // Both forms are computed and one selected by a mask (the compiler turns a `?:` here into a
        // branch): which one applies is a coin toss for random gaps, and a branch would mispredict half
        // the time. isLong is 1 when r ≥ t (both are below 2^63).
        let y = r &+ threshold
        let long = (y &>> 1) | ((y & 1) &<< shortWidth)
        let isLong = ((threshold &- 1 &- r) &>> 63) & 1
        return (UInt64(truncatingIfNeeded: r ^ ((long ^ r) & (0 &- isLong))), shortWidth &+ isLong)
    }

    /// Writes the code word for gap g ≥ 0.
    @inline(__always)
    func write(_ g: Int, to writer: inout BitWriter) {
        let (q, r) = divide(g)
        let (field, width) = remainderField(r)
        if q < 32 && width <= 31 {
            writer.write(((1 &<< UInt64(q)) &- 1) | (field &<< UInt64(q &+ 1)), count: q &+ 1 &+ width)
        } else {
            writer.writeOnes(q)
            writer.write(0, count: 1)
            writer.write(field, count: width)
        }
    }
}

