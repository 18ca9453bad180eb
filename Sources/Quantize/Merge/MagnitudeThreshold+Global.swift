public import TaskVector

extension MagnitudeThreshold {
    /// PEFT's magnitude rule over all of one expert's tensors, for `--scope global`: the threshold
    /// at the k-th largest |τ| of the whole expert, `k = int(density × d)`.
    ///
    /// Found by the streaming radix ``ThresholdSelector`` at rank `d − k + 1` (the k-th largest is
    /// the (d − k + 1)-th smallest), so memory does not grow with the expert. Pass the result to
    /// every tensor of that expert (``TensorMerge/merge(_:weights:method:lambda:thresholds:masks:seed:tensor:into:)``).
    /// Without ties at the threshold this keeps exactly the k entries that PEFT's top-k over the
    /// concatenated tensors keeps; entries tied at the threshold are all kept.
    ///
    /// - Parameters:
    ///   - count: d, the number of values in all the expert's tensors.
    ///   - density: the fraction to keep (≥ 1 keeps all).
    ///   - expert: the expert's name, for errors.
    ///   - forEachChunk: calls its argument with every chunk of the expert's residuals, in any
    ///     order; it is called twice.
    /// - Throws: ``QuantizeError`` when a value is NaN or ±Inf, or what `forEachChunk` throws.
    public static func global(count: Int, density: Double, expert: String? = nil,
                              forEachChunk: ((UnsafeBufferPointer<Float>) -> Void) throws -> Void) throws -> MagnitudeThreshold {
        let k = keepCount(density: density, of: count)
        if k == 0 { return .keepNone }
        if k >= count { return .keepAll }
        var selector = ThresholdSelector(rank: count - k + 1)
        var finite = true
        try forEachChunk { chunk in
            if finite { finite = selector.addCoarse(chunk) }
        }
        guard finite else {
            throw QuantizeError(tensor: expert, "residual holds NaN or ±Inf; cannot choose a magnitude threshold")
        }
        precondition(selector.total == count, "the chunks held \(selector.total) values, not \(count)")
        if selector.finishCoarse() {
            try forEachChunk { chunk in selector.addFine(chunk) }
        }
        return MagnitudeThreshold(bits: selector.finish().thresholdBits, tiesKept: .max)
    }
}
