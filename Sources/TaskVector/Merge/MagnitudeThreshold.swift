/// Which entries of one expert survive a magnitude trim: PEFT's `magnitude_based_pruning` as a
/// threshold on the bit pattern of |τ|.
///
/// An entry with magnitude bit pattern `p` (the IEEE bits of |τ|, so `−0` and `+0` are the same and
/// NaN orders above `+∞`, as in `torch.topk`) is kept iff `p > bits`, or `p == bits` and it is one of
/// the first ``tiesKept`` entries with that pattern in index order.
///
/// - Per tensor, ``topK(of:keeping:)`` finds the threshold that keeps exactly `k` entries: the `k`
///   largest magnitudes, and among entries tied at the k-th magnitude the lowest indices. PEFT uses
///   `torch.topk`, whose order among equal magnitudes is unspecified; on inputs without ties at the
///   threshold (continuous data, and every parity fixture) the two keep the same set.
/// - For `--scope global`, the caller finds one threshold over all of an expert's tensors and passes
///   it to every tensor of that expert. TaskVector cannot import Quantize, so the streaming search
///   lives there, as `MagnitudeThreshold.global(count:density:expert:forEachChunk:)` (the radix
///   `ThresholdSelector` at rank d − k + 1); any other search can build ``atLeast(_:)``. Ties at a
///   global threshold are all kept, since tensors are merged one at a time and cannot see each
///   other's indices.
public struct MagnitudeThreshold: Sendable, Hashable {
    /// The magnitude bit pattern of the threshold.
    public var bits: UInt32
    /// How many entries whose pattern equals ``bits`` are kept, in index order; `Int.max` keeps all.
    public var tiesKept: Int

    public init(bits: UInt32, tiesKept: Int) {
        precondition(tiesKept >= 0)
        self.bits = bits
        self.tiesKept = tiesKept
    }

    /// Keeps every entry (`density ≥ 1`, or `k` equal to the count).
    public static let keepAll = MagnitudeThreshold(bits: 0, tiesKept: .max)
    /// Keeps no entry (`k = 0`).
    public static let keepNone = MagnitudeThreshold(bits: .max, tiesKept: 0)

    /// Keeps every entry with |τ| ≥ `threshold` (ties included): the form a global threshold takes.
    public static func atLeast(_ threshold: Float) -> MagnitudeThreshold {
        MagnitudeThreshold(bits: threshold.magnitude.bitPattern, tiesKept: .max)
    }

    /// PEFT's number of kept entries: `int(density * numel)`.
    ///
    /// The product is taken in `Double` and truncated, exactly as Python does, so it inherits
    /// Python's rounding: `keepCount(density: 0.29, of: 100)` is 28. A density of 1 or more keeps
    /// everything.
    ///
    /// - Precondition: `density >= 0` and not NaN.
    public static func keepCount(density: Double, of count: Int) -> Int {
        precondition(density >= 0, "density must be ≥ 0, got \(density)")
        if density >= 1 { return count }
        return Int(density * Double(count))
    }

    /// The threshold that keeps exactly `k` entries of `values`: the `k` largest magnitudes, the
    /// lowest indices first among ties at the threshold.
    ///
    /// A radix selection over the magnitude bit patterns, one byte per pass from the top: no copy
    /// of the values, no sort, and no worst case.
    ///
    /// - Parameters:
    ///   - values: one expert's tensor.
    ///   - k: how many entries to keep; `k <= 0` keeps none, `k >= values.count` keeps all.
    /// - Returns: a threshold for ``TensorMerge``.
    /// - Complexity: O(n), four reads of `values`.
    public static func topK(of values: UnsafeBufferPointer<Float>, keeping k: Int) -> MagnitudeThreshold {
        if k <= 0 { return .keepNone }
        if k >= values.count { return .keepAll }
        var prefix: UInt32 = 0
        var prefixMask: UInt32 = 0
        var rank = k  // 1-based rank from the top among entries matching the prefix
        var histogram = [Int](repeating: 0, count: 256)
        for shift: UInt32 in [24, 16, 8, 0] {
            histogram.withUnsafeMutableBufferPointer { counts in
                counts.update(repeating: 0)
                for v in values {
                    let p = v.bitPattern & 0x7FFF_FFFF
                    if p & prefixMask == prefix { counts[Int((p &>> shift) & 0xFF)] &+= 1 }
                }
                var bucket = 255
                while counts[bucket] < rank {
                    rank -= counts[bucket]
                    bucket -= 1
                }
                prefix |= UInt32(bucket) &<< shift
                prefixMask |= 0xFF &<< shift
            }
        }
        return MagnitudeThreshold(bits: prefix, tiesKept: rank)
    }

    /// ``topK(of:keeping:)`` with PEFT's `k = int(density * numel)`.
    public static func peft(_ values: UnsafeBufferPointer<Float>, density: Double) -> MagnitudeThreshold {
        topK(of: values, keeping: keepCount(density: density, of: values.count))
    }

    /// Writes the trimmed values of `source` into `destination`: kept entries as they are, the
    /// others as `τ × 0` (PEFT multiplies by a 0/1 mask).
    ///
    /// `tiesSeen` counts entries equal to the threshold so far; pass the same variable across the
    /// consecutive blocks of one tensor, starting at 0.
    func apply(_ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<Float>,
               tiesSeen: inout Int) {
        precondition(source.count == destination.count)
        let t = bits
        if tiesKept == .max {
            for i in source.indices {
                let v = source[i]
                destination[i] = v.bitPattern & 0x7FFF_FFFF >= t ? v : v * 0
            }
            return
        }
        for i in source.indices {
            let v = source[i]
            let p = v.bitPattern & 0x7FFF_FFFF
            var keep = p > t
            if p == t {
                keep = tiesSeen < tiesKept
                tiesSeen &+= 1
            }
            destination[i] = keep ? v : v * 0
        }
    }
}
