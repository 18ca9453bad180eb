/// Which entries of one expert DARE keeps: one bit per entry, set when kept.
///
/// PEFT's `random_pruning` draws the mask with `torch.bernoulli(full_like(τ, density))`, which no
/// other program can reproduce. compeft draws it from its own documented stream instead, so a seed
/// gives the same merge everywhere, and ``init(keeping:)`` takes a mask from outside (a PEFT parity
/// test replays torch's mask through it).
///
/// ``random(count:density:seed:tensor:expert:)`` gives every (seed, tensor, expert) its own stream:
/// the stream key is `mix64(mix64(seed ^ fnv1a64(tensor)) ^ expert)`, where `fnv1a64` is 64-bit
/// FNV-1a over the tensor name's UTF-8 bytes and `mix64` is SplitMix64's output function;
/// ``Xoshiro256StarStar`` is seeded with that key. Entry `i` (in index order, one draw each) is kept
/// iff `u < density.fraction` for `u` = ``Xoshiro256StarStar/nextUnitInterval()``.
public struct DropMask: Sendable, Hashable {
    /// Number of entries.
    public let count: Int
    /// Bit `i % 64` of word `i / 64` is entry `i`; bits past `count` are zero.
    public private(set) var words: [UInt64]

    /// A mask from explicit keep flags.
    public init(keeping kept: [Bool]) {
        count = kept.count
        words = [UInt64](repeating: 0, count: (kept.count + 63) / 64)
        for (i, keep) in kept.enumerated() where keep { words[i &>> 6] |= 1 &<< UInt64(i & 63) }
    }

    /// A mask from packed words (bits past `count` are cleared).
    public init(count: Int, words: [UInt64]) {
        precondition(count >= 0 && words.count == (count + 63) / 64, "\(words.count) words cannot hold \(count) bits")
        self.count = count
        self.words = words
        if count & 63 != 0 { self.words[self.words.count - 1] &= (1 &<< UInt64(count & 63)) &- 1 }
    }

    /// Whether entry `i` is kept.
    public subscript(i: Int) -> Bool {
        precondition(i >= 0 && i < count)
        return words[i &>> 6] &>> UInt64(i & 63) & 1 == 1
    }

    /// Number of kept entries.
    public var keptCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// DARE's seeded mask for one expert's tensor (see the type's discussion for the stream).
    ///
    /// - Parameters:
    ///   - count: number of entries in the tensor.
    ///   - density: the probability of keeping an entry, ``Density/fraction``.
    ///   - seed: the merge's seed.
    ///   - tensor: the tensor's name, so tensors of the same shape get different masks.
    ///   - expert: the expert's index in the merge.
    public static func random(count: Int, density: Density, seed: UInt64, tensor: String, expert: Int) -> DropMask {
        let p = density.fraction
        var generator = Xoshiro256StarStar(seed: streamKey(seed: seed, tensor: tensor, expert: expert))
        var words = [UInt64](repeating: 0, count: (count + 63) / 64)
        words.withUnsafeMutableBufferPointer { bits in
            for i in 0..<count where generator.nextUnitInterval() < p {
                bits[i &>> 6] |= 1 &<< UInt64(i & 63)
            }
        }
        return DropMask(count: count, words: words)
    }

    /// The key that seeds the stream of (seed, tensor, expert).
    public static func streamKey(seed: UInt64, tensor: String, expert: Int) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in tensor.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let mix = Xoshiro256StarStar.mix64
        return mix(mix(seed ^ hash) ^ UInt64(UInt(bitPattern: expert)))
    }

    /// Writes DARE's sparsified values: `(τ × m) / density` for the mask `m` (0 or 1), as PEFT's
    /// `random_pruning(rescale=True)` computes it in `Float`.
    ///
    /// - Parameter offset: index of `source[0]` within the tensor.
    func apply(_ source: UnsafeBufferPointer<Float>, offset: Int, density: Float,
               into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count && offset + source.count <= count)
        words.withUnsafeBufferPointer { bits in
            for i in source.indices {
                let j = offset &+ i
                let kept = bits[j &>> 6] &>> UInt64(j & 63) & 1 == 1
                let v = source[i]
                destination[i] = (kept ? v : v * 0) / density
            }
        }
    }
}
