extension GapCoder {
    /// Encodes a ternary code's mask and signs.
    ///
    /// The result depends only on `code.count`, `code.mask` and `code.signs`; ``TernaryCode/keptCount``
    /// (kept values that were exactly zero) is not stored.
    ///
    /// - Parameter code: a ternary code (no sparse ``TernaryCode/values``) whose mask has
    ///   `nonzeroCount` set bits and zero pad bits.
    /// - Returns: the encoded bytes; ``decode(_:count:nonzero:)`` with the same count and nonzero count
    ///   returns the same mask and signs.
    /// - Complexity: O(d) time; O(d / 64 + n) extra memory.
    public static func encode(_ code: TernaryCode) -> [UInt8] {
        precondition(code.values.isEmpty, "GapCoder codes signs, not sparse values")
        let count = code.count
        let nonzero = code.nonzeroCount
        precondition(count >= 0 && count <= maxCount, "count \(count) out of range")
        precondition(code.mask.count == (count + 7) / 8, "mask has \(code.mask.count) bytes for \(count) values")
        precondition(code.signs.count == (nonzero + 7) / 8, "signs have \(code.signs.count) bytes for \(nonzero) values")
        precondition(count % 8 == 0 || code.mask[count / 8] >> UInt8(count % 8) == 0, "mask bits set past the last value")

        var words = [UInt64](repeating: 0, count: (count + 63) / 64)
        words.withUnsafeMutableBytes { $0.copyBytes(from: code.mask) }
        for i in words.indices { words[i] = UInt64(littleEndian: words[i]) }

        var out: [UInt8] = []
        out.reserveCapacity(1 + code.signs.count + count / 16 + 16)
        out.append(formatVersion << 4 | UInt8(blockShift - 8))
        out += code.signs
        words.withUnsafeBufferPointer { words in
            code.mask.withUnsafeBufferPointer { maskBytes in
                let plan = planRuns(words, count: count, nonzero: nonzero)
                var writer = BitWriter(reservingBits: count / 2)
                writeRuns(plan, words: words, maskBytes: maskBytes, count: count, into: &writer)
                writer.append(to: &out)
            }
        }
        return out
    }

    /// How one run codes its positions: a Golomb index or a byte Huffman j.
    struct RunParameter: Equatable {
        var isHuffman: Bool
        var index: Int
    }

    /// The Golomb parameters for every index, built once.
    static let golombParameters: [GolombParameter] = GolombParameter.indices.map(GolombParameter.init(index:))

    /// Chooses each block's parameter.
    ///
    /// Per block, candidates are the Golomb indices around the one matching the block's mean gap and,
    /// for densities in [1/16, 15/16], the Huffman codes around j = 64·density; their exact bit costs
    /// on the block are compared with the current run's parameter, which is kept unless a candidate
    /// saves more than an estimate of the bits a new run costs (run header and Golomb terminator).
    /// The first block starts from the parameter for the tensor's overall density.
    static func planRuns(_ words: UnsafeBufferPointer<UInt64>, count: Int, nonzero: Int) -> [RunParameter] {
        let blockSize = 1 << blockShift
        let blocks = (count + blockSize - 1) >> blockShift
        var plan: [RunParameter] = []
        plan.reserveCapacity(blocks)
        var gaps = [Int](repeating: 0, count: blockSize)
        var histogram = [Int](repeating: 0, count: 256)
        var previous = -1
        var setBits = 0
        var current: RunParameter?
        var lastIndex = [initialGolombIndex, initialHuffmanIndex]  // [Golomb, Huffman]

        gaps.withUnsafeMutableBufferPointer { gaps in
            histogram.withUnsafeMutableBufferPointer { histogram in
                for block in 0..<blocks {
                    let start = block << blockShift
                    let end = min(count, start + blockSize)
                    // Gaps of the kept positions in this block, from the block start or the previous
                    // kept position; the zeros after the last one are charged to this block as well.
                    var kept = 0
                    var next = start
                    for w in (start >> 6)..<((end + 63) >> 6) {
                        var word = words[w]
                        while word != 0 {
                            let position = w &<< 6 | word.trailingZeroBitCount
                            word &= word &- 1
                            gaps[kept] = position &- next
                            kept &+= 1
                            next = position &+ 1
                        }
                    }
                    let tailZeros = end - next
                    setBits &+= kept
                    let keptGaps = UnsafeBufferPointer(rebasing: gaps[..<kept])
                    let length = end - start
                    let density = Double(kept) / Double(length)
                    let huffmanRange = ByteHuffmanCode.indices
                    var histogramReady = false
                    func cost(_ p: RunParameter) -> Int {
                        if p.isHuffman {
                            if !histogramReady {
                                histogram.update(repeating: 0)
                                for w in (start >> 6)..<((end + 63) >> 6) {
                                    var word = words[w]
                                    for _ in 0..<8 {
                                        histogram[Int(word & 0xFF)] &+= 1
                                        word &>>= 8
                                    }
                                }
                                // Bytes past the end of the tensor are not coded.
                                histogram[0] &-= ((((end + 63) >> 6) << 6) - ((end + 7) & ~7)) >> 3
                                histogramReady = true
                            }
                            return ByteHuffmanCode.code(p.index).cost(UnsafeBufferPointer(histogram))
                        }
                        let g = golombParameters[p.index]
                        var bits = tailZeros / g.modulus
                        for gap in keptGaps { bits &+= g.length(gap) }
                        return bits
                    }

                    var candidates: [RunParameter] = []
                    do {
                        let k = GolombParameter.index(forDensity: max(Double(kept), 0.5) / Double(length))
                        for i in max(0, k - 1)...min(GolombParameter.indices.upperBound - 1, k + 1) {
                            candidates.append(RunParameter(isHuffman: false, index: i))
                        }
                    }
                    if density >= 1.0 / 16 && density <= 15.0 / 16 {
                        let j = min(huffmanRange.upperBound, max(huffmanRange.lowerBound, Int((density * 64).rounded())))
                        for i in max(huffmanRange.lowerBound, j - 1)...min(huffmanRange.upperBound, j + 1) {
                            candidates.append(RunParameter(isHuffman: true, index: i))
                        }
                    }
                    if current == nil {
                        current = initialParameter(count: count, nonzero: nonzero)
                    }
                    var chosen = current!
                    var chosenCost = cost(chosen)
                    for candidate in candidates where candidate != chosen {
                        let c = cost(candidate)
                        let reference = candidate.isHuffman == current!.isHuffman
                            ? current!.index : lastIndex[candidate.isHuffman ? 1 : 0]
                        var penalty = 6 + gammaBits(zigzag(candidate.index - reference) + 1)
                        if !current!.isHuffman { penalty += golombParameters[current!.index].shortWidth + 2 }
                        if c + penalty < chosenCost {
                            chosen = candidate
                            chosenCost = c + penalty
                        }
                    }
                    if chosen != current! {
                        lastIndex[current!.isHuffman ? 1 : 0] = current!.index
                        current = chosen
                    }
                    plan.append(chosen)
                }
            }
        }
        precondition(setBits == nonzero, "mask has \(setBits) set bits, nonzeroCount is \(nonzero)")
        return plan
    }

    /// The parameter for a whole tensor of the given density.
    static func initialParameter(count: Int, nonzero: Int) -> RunParameter {
        let p = count == 0 ? 0 : Double(nonzero) / Double(count)
        if p >= 0.25 && p <= 0.75 {
            return RunParameter(isHuffman: true, index: Int((p * 64).rounded()))
        }
        return RunParameter(isHuffman: false, index: p > 0 ? GolombParameter.index(forDensity: min(p, 0.5)) : 0)
    }

    /// Writes the runs of `plan` (one parameter per block) and their payloads.
    static func writeRuns(_ plan: [RunParameter], words: UnsafeBufferPointer<UInt64>, maskBytes: UnsafeBufferPointer<UInt8>,
                          count: Int, into writer: inout BitWriter) {
        var lastIndex = [initialGolombIndex, initialHuffmanIndex]
        var block = 0
        while block < plan.count {
            let parameter = plan[block]
            var next = block + 1
            while next < plan.count && plan[next] == parameter { next += 1 }
            let mode = parameter.isHuffman ? 1 : 0
            writer.writeGamma(UInt64(next - block))
            writer.write(UInt64(mode), count: 1)
            writer.writeGamma(UInt64(zigzag(parameter.index - lastIndex[mode]) + 1))
            lastIndex[mode] = parameter.index
            let start = block << blockShift
            let end = min(count, next << blockShift)
            if parameter.isHuffman {
                let code = ByteHuffmanCode.code(parameter.index)
                code.words.withUnsafeBufferPointer { codeWords in
                    code.lengths.withUnsafeBufferPointer { lengths in
                        for i in (start >> 3)..<((end + 7) >> 3) {
                            let s = Int(maskBytes[i])
                            writer.write(codeWords[s], count: Int(lengths[s]))
                        }
                    }
                }
            } else {
                let golomb = golombParameters[parameter.index]
                var position = start
                for w in (start >> 6)..<((end + 63) >> 6) {
                    var word = words[w]
                    while word != 0 {
                        let kept = w &<< 6 | word.trailingZeroBitCount
                        word &= word &- 1
                        golomb.write(kept &- position, to: &writer)
                        position = kept &+ 1
                    }
                }
                golomb.write(end - position, to: &writer)
            }
            block = next
        }
    }

    @inline(__always)
    static func zigzag(_ v: Int) -> Int { v >= 0 ? v << 1 : (-v << 1) - 1 }

    @inline(__always)
    static func gammaBits(_ v: Int) -> Int { 2 * (Int.bitWidth - v.leadingZeroBitCount) - 1 }
}
