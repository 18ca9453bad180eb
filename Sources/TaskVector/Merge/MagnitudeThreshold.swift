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
/// - For `--scope global`, ``global(count:density:expert:forEachChunk:)`` finds one threshold over
///   all of an expert's tensors, streaming, and the caller passes it to every tensor of that expert;
///   any other search can build ``atLeast(_:)``. Ties at a global threshold are all kept, since
///   tensors are merged one at a time and cannot see each other's indices.
///
/// Both searches are the radix ``ThresholdSelector`` at rank `d − k + 1` (the k-th largest is the
/// (d − k + 1)-th smallest), with `k` = ``Density/keepCount(of:)``.
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

    /// Keeps every entry (``Density/full``, or `k` equal to the count).
    public static let keepAll = MagnitudeThreshold(bits: 0, tiesKept: .max)
    /// Keeps no entry (`k = 0`).
    public static let keepNone = MagnitudeThreshold(bits: .max, tiesKept: 0)

    /// Keeps every entry with |τ| ≥ `threshold` (ties included): the form a global threshold takes.
    public static func atLeast(_ threshold: Float) -> MagnitudeThreshold {
        MagnitudeThreshold(bits: threshold.magnitude.bitPattern, tiesKept: .max)
    }

    /// The threshold that keeps exactly `k` entries of `values`: the `k` largest magnitudes, the
    /// lowest indices first among ties at the threshold.
    ///
    /// NaN and ±Inf are ranked by their bit patterns (NaN above +∞, as `torch.topk` orders them).
    ///
    /// - Parameters:
    ///   - values: one expert's tensor.
    ///   - k: how many entries to keep; `k <= 0` keeps none, `k >= values.count` keeps all.
    /// - Returns: a threshold for ``TensorMerge``.
    /// - Complexity: O(n), two reads of `values` (``ThresholdSelector``).
    public static func topK(of values: UnsafeBufferPointer<Float>, keeping k: Int) -> MagnitudeThreshold {
        if k <= 0 { return .keepNone }
        if k >= values.count { return .keepAll }
        var selector = ThresholdSelector(rank: values.count - k + 1, nonFinite: .ordered)
        _ = selector.addCoarse(values)
        if selector.finishCoarse() { selector.addFine(values) }
        let result = selector.finish()
        // Everything above the threshold is kept; the rest of the k are the first ties in index order.
        let above = result.keptCount - result.atThreshold
        return MagnitudeThreshold(bits: result.thresholdBits, tiesKept: k - above)
    }

    /// ``topK(of:keeping:)`` with PEFT's `k = int(density * numel)` (``Density/keepCount(of:)``).
    public static func peft(_ values: UnsafeBufferPointer<Float>, density: Density) -> MagnitudeThreshold {
        topK(of: values, keeping: density.keepCount(of: values.count))
    }

    /// PEFT's magnitude rule over all of one expert's tensors, for `--scope global`: the threshold
    /// at the k-th largest |τ| of the whole expert, `k` = ``Density/keepCount(of:)`` of d.
    ///
    /// Found by the streaming ``ThresholdSelector``, so memory does not grow with the expert. Pass the
    /// result to every tensor of that expert
    /// (``TensorMerge/merge(_:weights:method:lambda:thresholds:masks:seed:tensor:into:)``). Without
    /// ties at the threshold this keeps exactly the k entries that PEFT's top-k over the concatenated
    /// tensors keeps; entries tied at the threshold are all kept.
    ///
    /// - Parameters:
    ///   - count: d, the number of values in all the expert's tensors.
    ///   - density: the share to keep (``Density/full`` keeps all).
    ///   - expert: the expert's name (its path), for errors.
    ///   - forEachChunk: calls its argument with every chunk of the expert's residuals, in any
    ///     order; it is called twice at most.
    /// - Throws: ``TaskVectorError`` (``TaskVectorError/Code/nonFinite``) naming `expert` when a value
    ///   is NaN or ±Inf, or what `forEachChunk` throws.
    /// - Complexity: O(d), two passes over the chunks.
    public static func global(count: Int, density: Density, expert: String? = nil,
                              forEachChunk: ((UnsafeBufferPointer<Float>) -> Void) throws -> Void) throws -> MagnitudeThreshold {
        let k = density.keepCount(of: count)
        if k == 0 { return .keepNone }
        if k >= count { return .keepAll }
        var selector = ThresholdSelector(rank: count - k + 1)
        var finite = true
        try forEachChunk { chunk in
            if finite { finite = selector.addCoarse(chunk) }
        }
        guard finite else {
            throw TaskVectorError(.nonFinite, file: expert, "residual holds NaN or ±Inf; cannot choose a magnitude threshold")
        }
        precondition(selector.total == count, "the chunks held \(selector.total) values, not \(count)")
        if selector.finishCoarse() {
            try forEachChunk { chunk in selector.addFine(chunk) }
        }
        return MagnitudeThreshold(bits: selector.finish().thresholdBits, tiesKept: .max)
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
