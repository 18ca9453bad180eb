// Refinement: each planned run's parameter checked against its neighbours by exact bit counts,
// on a fixed sample of segments for very long runs.

extension GapCoder {
    /// Replaces each run's parameter by the best of it and its neighbours, counted exactly.
    static func refine(_ plan: inout [RunParameter], words: UnsafeBufferPointer<UInt64>, count: Int) {
        var block = 0
        var gaps: [Int] = []
        let smallGapLimit = 4096
        var gapHistogram = [Int](repeating: 0, count: smallGapLimit)
        var histogram = [Int](repeating: 0, count: 256)
        while block < plan.count {
            let parameter = plan[block]
            var next = block + 1
            while next < plan.count && plan[next] == parameter { next += 1 }
            let start = block << blockShift
            let end = min(count, next << blockShift)
            let firstWord = start >> 6
            let lastWord = (end + 63) >> 6
            // Costs of the run's parameter, its neighbours, and the parameters of both modes that match
            // the run's density: exact, or, for runs of more than `sampledRunKept` kept positions,
            // estimated on a fixed sample of its segments (see `sampledSegments`).
            // Gaps of the run: listed when few, counted per value (with the rare long ones listed)
            // when many, so a dense run costs each modulus in O(largest gap), not O(n).
            var runKept = 0
            for w in firstWord..<lastWord { runKept &+= words[w].nonzeroBitCount }
            let useHistogram = runKept > 4 * smallGapLimit
            // Every `stride`-th segment of `segmentWords` words, the first included; 1 = all of the run.
            let stride = runKept > sampledRunKept ? runKept / (sampledRunKept / 2) : 1
            let segments = sampledSegments(firstWord: firstWord, lastWord: lastWord, stride: stride)
            gaps.removeAll(keepingCapacity: true)
            var largestSmallGap = 0
            if useHistogram {
                gapHistogram.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            }
            gapHistogram.withUnsafeMutableBufferPointer { histogram in
                func add(_ gap: Int) {
                    if useHistogram && gap < smallGapLimit {
                        histogram[gap] &+= 1
                        largestSmallGap = max(largestSmallGap, gap)
                    } else {
                        gaps.append(gap)
                    }
                }
                for segment in segments {
                    var position = max(start, segment.lowerBound << 6)
                    for w in segment {
                        var word = words[w]
                        while word != 0 {
                            let kept = w &<< 6 | word.trailingZeroBitCount
                            word &= word &- 1
                            add(kept &- position)
                            position = kept &+ 1
                        }
                    }
                    // The terminator is coded once per run: counted when the whole run is.
                    if stride == 1 { add(end - position) }
                }
            }
            let gapBits = runKept
            let density = Double(gapBits) / Double(end - start)
            // Byte codes first: on a tie they write one code word per byte, not per kept value.
            var candidates: [RunParameter] = []
            if density >= 1.0 / 16 && density <= 15.0 / 16 || parameter.isHuffman {
                let j0 = Int((density * 64).rounded())
                for j in [j0 - 1, j0, j0 + 1] + (parameter.isHuffman ? [parameter.index - 1, parameter.index, parameter.index + 1] : [])
                where ByteHuffmanCode.indices.contains(j) && !candidates.contains(RunParameter(isHuffman: true, index: j)) {
                    candidates.append(RunParameter(isHuffman: true, index: j))
                }
            }
            let k0 = GolombParameter.index(forDensity: max(density, 0.5 / Double(end - start)))
            for k in [k0 - 1, k0, k0 + 1] + (parameter.isHuffman ? [] : [parameter.index - 1, parameter.index, parameter.index + 1])
            where GolombParameter.indices.contains(k) && !candidates.contains(RunParameter(isHuffman: false, index: k)) {
                candidates.append(RunParameter(isHuffman: false, index: k))
            }
            var best = parameter
            var bestBits = Int.max
            var histogramReady = false
            for candidate in candidates {
                var bits = 0
                if candidate.isHuffman {
                    if !histogramReady {
                        histogram.withUnsafeMutableBufferPointer { histogram in
                            histogram.update(repeating: 0)
                            for segment in segments {
                                for w in segment {
                                    var word = words[w]
                                    for _ in 0..<8 {
                                        histogram[Int(truncatingIfNeeded: word & 0xFF)] &+= 1
                                        word &>>= 8
                                    }
                                }
                            }
                            // Bytes past the end of the tensor are not coded (only the last word has them).
                            if segments.last?.upperBound == lastWord {
                                histogram[0] &-= lastWord * 8 - ((end + 7) >> 3)
                            }
                        }
                        histogramReady = true
                    }
                    bits = histogram.withUnsafeBufferPointer { ByteHuffmanCode.code(candidate.index).cost($0) }
                } else {
                    let golomb = golombParameters[candidate.index]
                    if useHistogram {
                        gapHistogram.withUnsafeBufferPointer { histogram in
                            for value in 0...largestSmallGap where histogram[value] != 0 {
                                bits &+= histogram[value] &* golomb.length(value)
                            }
                        }
                    }
                    for gap in gaps { bits &+= golomb.length(gap) }
                }
                if bits < bestBits {
                    bestBits = bits
                    best = candidate
                }
            }
            for b in block..<next { plan[b] = best }
            block = next
        }
    }

    /// Runs with more kept positions than this choose their parameter on a sample of 2¹⁸ to 2¹⁹ of
    /// their gaps. The candidates are compared on the same sample (paired), so the choice differs
    /// from the exact one only between parameters whose costs differ by well under 0.1 %.
    static let sampledRunKept = 1 << 19
    /// Words in a sampling segment (65 536 positions): long enough that the one gap a segment cuts
    /// at its start is a negligible share of its gaps.
    static let segmentWords = 1 << 10

    /// The word ranges refinement reads: every `stride`-th segment of ``segmentWords`` words from
    /// `firstWord` (the whole range for stride 1). A fixed choice, so output does not depend on anything
    /// but the mask.
    static func sampledSegments(firstWord: Int, lastWord: Int, stride: Int) -> [Range<Int>] {
        guard stride > 1 else { return [firstWord..<lastWord] }
        return Swift.stride(from: firstWord, to: lastWord, by: segmentWords * stride).map {
            $0..<min(lastWord, $0 + segmentWords)
        }
    }
}
