#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Entropy coding of ternary masks: Golomb codes on the gaps between kept positions, switching per
/// block to a Huffman code on mask bytes where the mask is dense.
///
/// A ternary tensor of d values with n kept carries at least
/// ``shannonBoundBits(count:nonzero:)`` = d·H(n/d) + n bits when kept positions are independent
/// (H is the binary entropy; n bits are the signs). This coder stores the signs verbatim and codes the
/// mask in runs of whole blocks of 2^8 = 256 positions; each run carries its own parameter:
///
/// - a Golomb modulus (``GolombParameter``) for the gaps between kept positions, optimal for
///   geometric gaps, within 0.3 % of the bound at p ≤ 2 % and 0.65 % at p ≤ 20 %;
/// - or a Huffman code on mask bytes for p = j / 64 (``ByteHuffmanCode``), within 0.45 % of the bound
///   for 0.25 ≤ p ≤ 0.75, where Golomb codes lose up to 2 %.
///
/// The encoder chooses the runs by a shortest path over blocks that weighs each block's modelled cost
/// in every parameter against the cost of starting a new run, then fixes each run's parameter by
/// exact bit count (on a fixed sample of its segments for runs of more than 2¹⁹ kept positions); so
/// a small iid mask is one run (a large one a few dozen, where chance stretches of density repay a
/// run header), and a clustered mask (dense rows, empty rows, at any row width down to a few hundred
/// values) follows its density.
///
/// ## Layout
///
/// All fields are little-endian and LSB-first within bytes:
///
/// 1. One byte: format version (1) in the high four bits, block shift − 8 in the low four bits.
/// 2. The signs: ⌈n / 8⌉ bytes, exactly ``TernaryCode/signs`` (bit k = sign of the k-th kept value,
///    1 for negative); pad bits are zero.
/// 3. A bit stream of runs until every block is covered. A run is: its length in blocks (Elias-gamma),
///    a mode bit (0 Golomb, 1 byte Huffman), and its parameter as a zigzag-coded difference from the
///    previous run's parameter of the same mode (Elias-gamma of zigzag + 1; the first Golomb index is
///    taken relative to 6, the first Huffman j to 16). Then the run's payload:
///    - Golomb: for each kept position in the run, the gap from the run start or from the previous
///      kept position + 1, then the gap to the run's end (a terminator). The stream alone thus fixes
///      the mask, and a wrong expected n is always detected.
///    - Huffman: one code word per mask byte of the run, the last byte's pad bits zero.
///    The stream ends with zero bits to a whole byte; nothing follows it.
///
/// Fixed overhead is the 1-byte header. Each run adds a header of 3 bits or more and, for Golomb, its
/// terminator; byte padding of the signs and of the stream adds under 2 bytes. A small iid mask is one
/// run, so it costs 3–7 bytes in all: a 512-value tensor at p = 10 % takes 41 bytes against a bound of 36.3.
///
/// Decoding checks everything: a stream either decodes to exactly `count` positions with `nonzero`
/// kept, or throws. It never reads past the input, allocates only in proportion to `count` and the
/// input, and runs in time linear in both.
public enum GapCoder {
    /// The layout version in the header's high four bits.
    static let formatVersion: UInt8 = 1
    /// log₂ of the positions per block.
    static let blockShift = 8
    /// Positions this coder accepts (2^48), so block arithmetic never overflows.
    public static let maxCount = 1 << 48
    /// Golomb index and Huffman j that the first run of each mode is coded relative to.
    static let initialGolombIndex = 6
    static let initialHuffmanIndex = 16

    /// The floating-point format ``decode(_:count:nonzero:scale:into:as:)`` writes.
    public enum OutputType: Sendable, CaseIterable {
        /// IEEE binary32, 4 bytes a value.
        case f32
        /// IEEE binary16, 2 bytes a value; the scale is rounded to nearest even once.
        case f16
        /// bfloat16, 2 bytes a value; the scale is rounded to nearest even once.
        case bf16

        /// Bytes a value takes.
        public var byteSize: Int { self == .f32 ? 4 : 2 }
    }

    /// The information bound for a ternary tensor: d·H(n/d) + n bits.
    ///
    /// H(p) = −p log₂ p − (1 − p) log₂(1 − p) is the entropy of a mask whose positions are kept
    /// independently with probability p = n/d, and each kept value adds one sign bit.
    ///
    /// - Parameters:
    ///   - count: d, the number of values.
    ///   - nonzero: n, the number of kept (non-zero) values, 0 ≤ n ≤ d.
    /// - Returns: the bound in bits; 0 for an empty tensor.
    public static func shannonBoundBits(count: Int, nonzero: Int) -> Double {
        precondition(nonzero >= 0 && nonzero <= count)
        guard count > 0 else { return 0 }
        let d = Double(count)
        let p = Double(nonzero) / d
        var entropy = 0.0
        if p > 0 && p < 1 { entropy = -p * log2(p) - (1 - p) * log2(1 - p) }
        return d * entropy + Double(nonzero)
    }
}
