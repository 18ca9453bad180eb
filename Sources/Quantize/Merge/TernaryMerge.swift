public import TaskVector

/// Task arithmetic and TIES on ternary experts, computed from the mask and sign bits 64 positions
/// at a time, without expanding any expert to floats.
///
/// The result equals, value for value (`==`), what ``TensorMerge`` computes on the expanded experts
/// (``TernaryExpert/expanded()``):
/// - ``taskArithmetic(_:weights:lambda:into:)`` equals ``TensorMerge/taskArithmetic(_:weights:lambda:)``;
/// - ``ties(_:weights:election:lambda:into:)`` equals ``TensorMerge/ties(_:weights:density:election:lambda:)``
///   at density 1. A ternary expert is already trimmed, and all its magnitudes tie, so there is no
///   further top-k to take; to trim harder, re-encode the experts at a lower density first.
///
/// It is the same arithmetic in the same order: each nonzero contributes `±sᵢ × wᵢ`, summed over
/// experts in index order. Words where no expert has a bit set are skipped; positions where exactly
/// one expert is set take its weighted value directly (the election then always agrees with it);
/// positions where experts overlap run the election and disjoint mean over the set experts only.
/// An expert with scale 0 contributes only zeros, which never agree, so it is skipped.
///
/// The output is a dense residual; to store it ternary again, run the planner's top-k on it.
public enum TernaryMerge {
    /// Σ wᵢ·τᵢ over ternary experts, times `lambda`.
    ///
    /// - Precondition: one weight per expert; every code and the destination of one length.
    /// - Complexity: O(n/64 + Σ nonzeros).
    public static func taskArithmetic(_ experts: [TernaryExpert], weights: [Float], lambda: Float = 1,
                                      into destination: UnsafeMutableBufferPointer<Float>) {
        validate(experts, weights: weights, count: destination.count)
        destination.update(repeating: 0)
        for (e, expert) in experts.enumerated() where expert.scale != 0 {
            let positive = expert.scale
            let negative = -expert.scale
            let w = weights[e]
            var cursor = SignCursor()
            expert.code.mask.withUnsafeBufferPointer { mask in
                expert.code.signs.withUnsafeBufferPointer { signs in
                    for word in 0..<((destination.count + 63) / 64) {
                        var bits = maskWord(mask, word)
                        guard bits != 0 else { continue }
                        var window = cursor.take(bits.nonzeroBitCount, from: signs)
                        let base = word &* 64
                        while bits != 0 {
                            let i = base &+ bits.trailingZeroBitCount
                            destination[i] += (window & 1 == 1 ? negative : positive) * w
                            window &>>= 1
                            bits &= bits &- 1
                        }
                    }
                }
            }
        }
        scale(destination, by: lambda)
    }

    /// TIES's sign election and disjoint mean over ternary experts (no further trim), times `lambda`.
    ///
    /// - Precondition: one weight per expert; every code and the destination of one length.
    /// - Complexity: O(k·n/64 + k·overlapping positions + Σ nonzeros).
    public static func ties(_ experts: [TernaryExpert], weights: [Float], election: SignElection = .total,
                            lambda: Float = 1, into destination: UnsafeMutableBufferPointer<Float>) {
        validate(experts, weights: weights, count: destination.count)
        destination.update(repeating: 0)
        let live = experts.indices.filter { experts[$0].scale != 0 }
        let k = live.count
        var masks = [UInt64](repeating: 0, count: k)
        var negatives = [UInt64](repeating: 0, count: k)
        var cursors = [SignCursor](repeating: SignCursor(), count: k)
        // Signs as values: a negative scale flips every sign bit of its expert.
        let flips = live.map { experts[$0].scale < 0 ? UInt64.max : 0 }
        let values = live.map { (positive: experts[$0].scale.magnitude, negative: -experts[$0].scale.magnitude, weight: weights[$0]) }
        TensorMerge.withBytes(live.map { experts[$0].code.mask }) { maskBytes in
            TensorMerge.withBytes(live.map { experts[$0].code.signs }) { signBytes in
                for word in 0..<((destination.count + 63) / 64) {
                    var union: UInt64 = 0
                    var overlap: UInt64 = 0
                    for e in 0..<k {
                        let m = maskWord(maskBytes[e], word)
                        masks[e] = m
                        negatives[e] = m == 0 ? 0 : deposit(cursors[e].take(m.nonzeroBitCount, from: signBytes[e]), into: m) ^ (flips[e] & m)
                        overlap |= union & m
                        union |= m
                    }
                    guard union != 0 else { continue }
                    let base = word &* 64
                    let single = union & ~overlap
                    if single != 0 {
                        for e in 0..<k {
                            var bits = masks[e] & single
                            while bits != 0 {
                                let j = bits.trailingZeroBitCount
                                let v = values[e]
                                destination[base &+ j] = (negatives[e] &>> UInt64(j) & 1 == 1 ? v.negative : v.positive) * v.weight
                                bits &= bits &- 1
                            }
                        }
                    }
                    var shared = overlap
                    while shared != 0 {
                        let j = UInt64(shared.trailingZeroBitCount)
                        shared &= shared &- 1
                        var elected: Float = 0
                        for e in 0..<k where masks[e] &>> j & 1 == 1 {
                            let negative = negatives[e] &>> j & 1 == 1
                            switch election {
                            case .total: elected += negative ? values[e].negative : values[e].positive
                            case .frequency: elected += negative ? -1 : 1
                            }
                        }
                        let electNegative = !(elected >= 0)
                        var mixed: Float = 0
                        var agreeing: Float = 0
                        for e in 0..<k where masks[e] &>> j & 1 == 1 {
                            let negative = negatives[e] &>> j & 1 == 1
                            guard negative == electNegative else { continue }
                            mixed += (negative ? values[e].negative : values[e].positive) * values[e].weight
                            agreeing += 1
                        }
                        destination[base &+ Int(j)] = mixed / max(agreeing, 1)
                    }
                }
            }
        }
        scale(destination, by: lambda)
    }

    /// ``taskArithmetic(_:weights:lambda:into:)`` or ``ties(_:weights:election:lambda:into:)`` into a new array.
    public static func merge(_ experts: [TernaryExpert], weights: [Float], combination: Combination,
                             lambda: Float = 1) -> [Float] {
        let n = experts.first?.code.count ?? 0
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch combination {
            case .sum: taskArithmetic(experts, weights: weights, lambda: lambda, into: out)
            case .disjointMean(let election): ties(experts, weights: weights, election: election, lambda: lambda, into: out)
            }
            initialized = n
        }
    }

    static func validate(_ experts: [TernaryExpert], weights: [Float], count: Int) {
        precondition(!experts.isEmpty, "merging needs at least one expert")
        precondition(weights.count == experts.count, "\(weights.count) weights for \(experts.count) experts")
        for (e, expert) in experts.enumerated() {
            let code = expert.code
            precondition(code.count == count, "expert \(e) codes \(code.count) values, the destination holds \(count)")
            precondition(code.mask.count == (count + 7) / 8, "expert \(e)'s mask has \(code.mask.count) bytes for \(count) values")
            precondition(code.signs.count * 8 >= code.nonzeroCount, "expert \(e) has too few sign bits")
            assert(code.mask.reduce(0) { $0 + $1.nonzeroBitCount } == code.nonzeroCount, "expert \(e)'s mask disagrees with nonzeroCount")
        }
    }

    static func scale(_ values: UnsafeMutableBufferPointer<Float>, by lambda: Float) {
        guard lambda != 1 else { return }
        for i in values.indices { values[i] *= lambda }
    }

    /// Mask bits 64·word ..< 64·word + 64, bit j for position 64·word + j (bytes are LSB first).
    @inline(__always)
    static func maskWord(_ bytes: UnsafeBufferPointer<UInt8>, _ word: Int) -> UInt64 {
        let start = word &* 8
        let end = min(start &+ 8, bytes.count)
        var w: UInt64 = 0
        for i in start..<end { w |= UInt64(bytes[i]) &<< UInt64((i &- start) &* 8) }
        return w
    }

    /// Spreads the low `popcount(mask)` bits of `bits`, in order, onto the set bits of `mask`
    /// (a software PDEP).
    @inline(__always)
    static func deposit(_ bits: UInt64, into mask: UInt64) -> UInt64 {
        var result: UInt64 = 0
        var m = mask
        var b = bits
        while m != 0 {
            if b & 1 == 1 { result |= m & (0 &- m) }
            b &>>= 1
            m &= m &- 1
        }
        return result
    }
}

/// Reads a code's sign bits in order: one per set mask bit, LSB first within each byte.
struct SignCursor {
    var offset = 0

    /// The next `count` (≤ 64) sign bits, the first in bit 0.
    @inline(__always)
    mutating func take(_ count: Int, from bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        guard count > 0 else { return 0 }
        var index = offset &>> 3
        let shift = offset & 7
        var bits = UInt64(bytes[index] &>> UInt8(shift))
        var have = 8 &- shift
        index &+= 1
        while have < count {
            bits |= UInt64(bytes[index]) &<< UInt64(have)
            have &+= 8
            index &+= 1
        }
        offset &+= count
        return count == 64 ? bits : bits & ((1 &<< UInt64(count)) &- 1)
    }
}
