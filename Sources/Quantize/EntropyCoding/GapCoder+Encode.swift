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
    /// - Complexity: O(d) time; about d/4 bytes of working memory besides the result.
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

        let writer = words.withUnsafeBufferPointer { words in
            code.mask.withUnsafeBufferPointer { maskBytes in
                let plan = planRuns(words, count: count, nonzero: nonzero)
                var writer = BitWriter(reservingBits: count + 64)
                writeRuns(plan, words: words, maskBytes: maskBytes, count: count, into: &writer)
                return writer
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(1 + code.signs.count + (writer.bitCount + 7) / 8)
        out.append(formatVersion << 4 | UInt8(blockShift - 8))
        out += code.signs
        writer.append(to: &out)
        return out
    }

    /// How one run codes its positions: a Golomb index or a byte Huffman j.
    struct RunParameter: Equatable {
        var isHuffman: Bool
        var index: Int
    }

    /// The Golomb parameters for every index, built once.
    static let golombParameters: [GolombParameter] = GolombParameter.indices.map(GolombParameter.init(index:))

    /// Chooses each block's parameter: a shortest path over blocks, then exact refinement per run.
    ///
    /// States are Golomb indices (every index up to m = 16, then coarser, to m = 4096) and byte
    /// Huffman codes with j = 4, 8, ..., 60; refinement makes the coarse grid exact. A block's cost in a
    /// state is modelled from its kept count c and zero count z alone, z/m + c·(1 + b − 1 + (m − t)/m)
    /// − c·(m − 1)/(2m) for Golomb (remainders taken as uniform), and Σ (bytes with i set bits) ×
    /// (mean code length of such bytes) for Huffman. Switching state costs an estimated run header
    /// plus the Golomb terminator. The cheapest path is optimal for the model; each run of it then gets
    /// the best of its parameter and the neighbouring ones by exact bit count.
    static func planRuns(_ words: UnsafeBufferPointer<UInt64>, count: Int, nonzero: Int) -> [RunParameter] {
        let blockSize = 1 << blockShift
        let wordsPerBlock = blockSize >> 6
        let blocks = (count + blockSize - 1) >> blockShift
        guard blocks > 0 else { return [] }
        let states = PlanningStates(count: count)
        let stateCount = states.parameters.count
        precondition(stateCount <= 64)
        var switched = [UInt64](repeating: 0, count: blocks)
        var blockCostStorage = [Double](repeating: 0, count: stateCount)
        let classLengthStorage = states.classLength.flatMap { $0 }
        var cheapestLeaving = [Int32](repeating: 0, count: blocks)
        var cost = [Double](repeating: .infinity, count: stateCount)
        var setBits = 0
        var popcounts = [Int](repeating: 0, count: 9)
        // The cheapest state to leave before the current block, with its Golomb terminator.
        var leaving = runHeaderBits
        var leavingState = 0

        cost.withUnsafeMutableBufferPointer { cost in
        switched.withUnsafeMutableBufferPointer { switched in
        states.inverseModulus.withUnsafeBufferPointer { inverseModulus in
        states.halfRemainder.withUnsafeBufferPointer { halfRemainder in
        states.perKept.withUnsafeBufferPointer { perKept in
        states.terminatorBits.withUnsafeBufferPointer { terminatorBits in
        popcounts.withUnsafeMutableBufferPointer { popcounts in
        blockCostStorage.withUnsafeMutableBufferPointer { blockCost in
        classLengthStorage.withUnsafeBufferPointer { classLength in
            for block in 0..<blocks {
                let start = block << blockShift
                let length = min(count, start + blockSize) - start
                let firstWord = block &* wordsPerBlock
                let lastWord = min(words.count, firstWord &+ wordsPerBlock)
                var kept = 0
                for w in firstWord..<lastWord { kept &+= words[w].nonzeroBitCount }
                setBits &+= kept
                let dense = kept &* 16 >= length && kept &* 16 <= 15 &* length
                if dense {
                    popcounts.update(repeating: 0)
                    for w in firstWord..<lastWord {
                        var word = words[w]
                        for _ in 0..<8 {
                            popcounts[Int(truncatingIfNeeded: word & 0xFF).nonzeroBitCount] &+= 1
                            word &>>= 8
                        }
                    }
                    // Bytes past the end of the tensor are not coded.
                    popcounts[0] &-= (lastWord &- firstWord) &* 8 &- (length &+ 7) &>> 3
                }
                let c = Double(kept)
                let z = Double(length &- kept)
                cheapestLeaving[block] = Int32(leavingState)
                let entering = leaving + runHeaderBits
                // Block costs, then stay-or-switch per state, then the cheapest state to leave.
                for s in 0..<states.golombCount {
                    blockCost[s] = max(0, z * inverseModulus[s] - c * halfRemainder[s]) + c * perKept[s]
                }
                for h in 0..<(stateCount &- states.golombCount) {
                    var bits = Double.infinity
                    if dense {
                        bits = 0
                        for i in 0..<9 { bits += Double(popcounts[i]) * classLength[h &* 9 &+ i] }
                    }
                    blockCost[states.golombCount &+ h] = bits
                }
                var flags: UInt64 = 0
                for s in 0..<stateCount {
                    let stay = cost[s]
                    let switches = entering < stay
                    flags |= (switches ? 1 : 0) &<< UInt64(s)
                    cost[s] = (switches ? entering : stay) + blockCost[s]
                }
                switched[block] = flags
                var nextLeaving = Double.infinity
                var nextLeavingState = 0
                for s in 0..<stateCount {
                    let leave = cost[s] + terminatorBits[s]
                    if leave < nextLeaving {
                        nextLeaving = leave
                        nextLeavingState = s
                    }
                }
                leaving = nextLeaving
                leavingState = nextLeavingState
            }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        precondition(setBits == nonzero, "mask has \(setBits) set bits, nonzeroCount is \(nonzero)")

        // Walk the cheapest path back.
        var state = cost.indices.min { cost[$0] < cost[$1] }!
        var path = [Int](repeating: 0, count: blocks)
        for block in stride(from: blocks - 1, through: 0, by: -1) {
            path[block] = state
            if switched[block] >> UInt64(state) & 1 == 1 {
                state = Int(cheapestLeaving[block])
            }
        }
        var plan = path.map { states.parameters[$0] }
        refine(&plan, words: words, count: count)
        return plan
    }

    /// Estimated bits of a run header, charged on every switch.
    static let runHeaderBits = 14.0

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
            // Exact costs of the run's parameter, its neighbours, and the parameters of both modes
            // that match the run's density.
            // Gaps of the run: listed when few, counted per value (with the rare long ones listed)
            // when many, so a dense run costs each modulus in O(largest gap), not O(n).
            var runKept = 0
            for w in firstWord..<lastWord { runKept &+= words[w].nonzeroBitCount }
            let useHistogram = runKept > 4 * smallGapLimit
            gaps.removeAll(keepingCapacity: true)
            var largestSmallGap = 0
            if useHistogram {
                gapHistogram.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            }
            gapHistogram.withUnsafeMutableBufferPointer { histogram in
                var position = start
                func add(_ gap: Int) {
                    if useHistogram && gap < smallGapLimit {
                        histogram[gap] &+= 1
                        largestSmallGap = max(largestSmallGap, gap)
                    } else {
                        gaps.append(gap)
                    }
                }
                for w in firstWord..<lastWord {
                    var word = words[w]
                    while word != 0 {
                        let kept = w &<< 6 | word.trailingZeroBitCount
                        word &= word &- 1
                        add(kept &- position)
                        position = kept &+ 1
                    }
                }
                add(end - position)
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
                            for w in firstWord..<lastWord {
                                var word = words[w]
                                for _ in 0..<8 {
                                    histogram[Int(truncatingIfNeeded: word & 0xFF)] &+= 1
                                    word &>>= 8
                                }
                            }
                            histogram[0] &-= (lastWord - firstWord) * 8 - ((end + 7) >> 3) + (start >> 3)
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

    /// The parameters the planner chooses among, with the constants of their cost models.
    struct PlanningStates {
        var parameters: [RunParameter] = []
        var golombCount = 0
        /// Golomb states: 1/m, (m − 1)/(2m), 1 + (b − 1) + (m − t)/m, and the terminator estimate.
        var inverseModulus: [Double] = []
        var halfRemainder: [Double] = []
        var perKept: [Double] = []
        var terminatorBits: [Double] = []
        /// Huffman states: mean code length of the bytes with i set bits, i = 0...8.
        var classLength: [[Double]] = []

        init(count: Int) {
            // m ≤ 4096: refinement gives sparser runs their exact modulus.
            var k = 0
            while k <= 144 {
                let g = golombParameters[k]
                let m = Double(g.modulus)
                parameters.append(RunParameter(isHuffman: false, index: k))
                inverseModulus.append(1 / m)
                halfRemainder.append((m - 1) / (2 * m))
                perKept.append(Double(1 + g.shortWidth) + (m - Double(min(g.threshold, g.modulus))) / m)
                terminatorBits.append(Double(g.shortWidth + 2))
                k += k < 16 ? 1 : k < 32 ? 2 : k < 80 ? 4 : 8
            }
            golombCount = parameters.count
            for j in Swift.stride(from: ByteHuffmanCode.indices.lowerBound, through: ByteHuffmanCode.indices.upperBound, by: 4) {
                let code = ByteHuffmanCode.code(j)
                var sums = [Double](repeating: 0, count: 9)
                var counts = [Double](repeating: 0, count: 9)
                for byte in 0..<256 {
                    sums[byte.nonzeroBitCount] += Double(code.lengths[byte])
                    counts[byte.nonzeroBitCount] += 1
                }
                parameters.append(RunParameter(isHuffman: true, index: j))
                terminatorBits.append(0)
                classLength.append((0..<9).map { sums[$0] / counts[$0] })
            }
        }
    }

    @inline(__always)
    static func zigzag(_ v: Int) -> Int { v >= 0 ? v << 1 : (-v << 1) - 1 }

    @inline(__always)
    static func gammaBits(_ v: Int) -> Int { 2 * (Int.bitWidth - v.leadingZeroBitCount) - 1 }
}
