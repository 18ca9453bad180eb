public import TaskVector

extension ThresholdSelector {
    /// Inputs smaller than this are not sampled: their second pass is cheap.
    public static let windowSamplingMinimum = 1 << 20
    /// Values read at the start of every `windowSampleStride` values of a tensor.
    static let windowSampleRun = 256
    static let windowSampleStride = 1 << 16

    /// Guesses the coarse buckets the threshold of rank `rank` falls in, from a fixed sample of the group:
    /// the first 256 values of every 65 536 of each tensor (1/256 of the values, on 1/64 of the pages).
    ///
    /// The window spans the sample's buckets within four standard deviations of the target rank, widened
    /// to ``maxWindowBuckets``; nil for inputs under ``windowSamplingMinimum`` values. A wrong guess only
    /// costs the second pass it would have saved.
    ///
    /// - Parameter releasesPages: hand the sampled pages back as it goes (see ``ResidualChunks``).
    public static func window(sampling group: [SourceTensor], rank: Int, releasesPages: Bool = true) -> Range<UInt32>? {
        let total = group.reduce(0) { $0 + $1.count }
        guard total >= windowSamplingMinimum, rank > 0, rank <= total else { return nil }
        var histogram = [UInt32](repeating: 0, count: 1 << 16)
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: windowSampleRun)
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: windowSampleRun)
        defer {
            values.deallocate()
            scratch.deallocate()
        }
        var sampled = 0
        for tensor in group {
            var start = 0
            var releasedUpTo = 0
            let elementsPerRelease = ResidualChunks.releaseInterval / tensor.data.dtype.byteSize
            while start < tensor.count {
                let run = UnsafeMutableBufferPointer(rebasing: values[0..<min(windowSampleRun, tensor.count - start)])
                tensor.loadResidual(from: start, into: run, scratch: scratch)
                for v in run {
                    let magnitude = v.bitPattern & 0x7FFF_FFFF
                    // NaN and ±Inf are refused by pass 1; the guess just leaves them out.
                    if magnitude < 0x7F80_0000 {
                        histogram[Int(magnitude &>> 16)] &+= 1
                        sampled += 1
                    }
                }
                start += windowSampleStride
                // The kernel maps whole neighbourhoods (or large folios) around each sampled page; hand
                // them back as the sample moves on, so sampling does not hold a mapped model in memory.
                if releasesPages && (start - releasedUpTo >= elementsPerRelease || start >= tensor.count) {
                    tensor.releasePages(elements: releasedUpTo..<min(start, tensor.count))
                    releasedUpTo = start
                }
            }
        }
        guard sampled > 0 else { return nil }
        let q = Double(rank) / Double(total)
        let target = q * Double(sampled)
        let spread = 4 * (Double(sampled) * q * (1 - q)).squareRoot() + 2
        func bucket(atRank r: Double) -> Int {
            let r = Swift.min(Double(sampled), Swift.max(1, r.rounded(.up)))
            var cumulative = 0.0
            for b in 0..<(1 << 16) {
                cumulative += Double(histogram[b])
                if cumulative >= r { return b }
            }
            return (1 << 16) - 1
        }
        let low = bucket(atRank: target - spread)
        let high = bucket(atRank: target + spread)
        let width = maxWindowBuckets
        let first: Int
        if high - low + 1 <= width {
            first = low - (width - (high - low + 1)) / 2
        } else {
            first = bucket(atRank: target) - width / 2 + 1
        }
        let start = Swift.min(Swift.max(0, first), (1 << 16) - width)
        return UInt32(start)..<UInt32(start + width)
    }
}
