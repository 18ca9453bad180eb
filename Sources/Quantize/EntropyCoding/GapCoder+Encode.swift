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

        var writer = BitWriter(reservingBits: count + 64)
        words.withUnsafeBufferPointer { words in
            code.mask.withUnsafeBufferPointer { maskBytes in
                let plan = planRuns(words, count: count, nonzero: nonzero)
                writeRuns(plan, words: words, maskBytes: maskBytes, count: count, into: &writer)
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
    /// state is modelled from its kept count c alone (``PlanningStates``), so full blocks read their
    /// costs from a table row. Switching state costs an estimated run header plus the Golomb
    /// terminator. The path is the cheapest for the model; each run of it then gets the best of its
    /// parameter and the neighbouring ones by exact bit count (sampled for very long runs, see
    /// ``sampledRunKept``).
    ///
    /// The path costs are kept relative to the cheapest state to leave (renormalised every block), so
    /// they stay within a few hundred bits and binary32 holds them exactly enough; the 64 states are
    /// updated as four `SIMD16<Float>` vectors.
    static func planRuns(_ words: UnsafeBufferPointer<UInt64>, count: Int, nonzero: Int) -> [RunParameter] {
        let blockSize = 1 << blockShift
        let wordsPerBlock = blockSize >> 6
        let blocks = (count + blockSize - 1) >> blockShift
        guard blocks > 0 else { return [] }
        let states = PlanningStates.shared
        var switched = [UInt64](repeating: 0, count: blocks)
        var cheapestLeaving = [UInt8](repeating: 0, count: blocks)
        var setBits = 0
        typealias Lanes = SIMD16<Float>
        // Relative path cost per state; before the first block every state is entered from "nothing".
        var cost = (Lanes(repeating: .infinity), Lanes(repeating: .infinity), Lanes(repeating: .infinity), Lanes(repeating: .infinity))
        var leavingState = 0
        let header = Lanes(repeating: runHeaderBits)
        let term = states.terminatorBits
        var partialRow = [Float](repeating: 0, count: PlanningStates.lanes)

        switched.withUnsafeMutableBufferPointer { switched in
        cheapestLeaving.withUnsafeMutableBufferPointer { cheapestLeaving in
        states.table.withUnsafeBufferPointer { table in
        partialRow.withUnsafeMutableBufferPointer { partialRow in
            let rows = UnsafeRawPointer(table.baseAddress!)
            for block in 0..<blocks {
                let start = block << blockShift
                let length = min(count, start + blockSize) - start
                let firstWord = block &* wordsPerBlock
                let lastWord = min(words.count, firstWord &+ wordsPerBlock)
                var kept = 0
                for w in firstWord..<lastWord { kept &+= words[w].nonzeroBitCount }
                setBits &+= kept
                let row: UnsafeRawPointer
                if length == blockSize {
                    row = rows + kept &* PlanningStates.lanes &* 4
                } else {
                    states.fillRow(partialRow, kept: kept, length: length)
                    row = UnsafeRawPointer(partialRow.baseAddress!)
                }
                cheapestLeaving[block] = UInt8(truncatingIfNeeded: leavingState)
                // Stay in each state, or switch into it from the cheapest state to leave (relative cost 0,
                // plus a header); a state switches when the header is cheaper than staying.
                let flags = switchFlags(header - cost.0) | switchFlags(header - cost.1) &<< 16
                    | switchFlags(header - cost.2) &<< 32 | switchFlags(header - cost.3) &<< 48
                switched[block] = flags
                cost.0 = lesser(cost.0, header) + row.loadUnaligned(fromByteOffset: 0, as: Lanes.self)
                cost.1 = lesser(cost.1, header) + row.loadUnaligned(fromByteOffset: 64, as: Lanes.self)
                cost.2 = lesser(cost.2, header) + row.loadUnaligned(fromByteOffset: 128, as: Lanes.self)
                cost.3 = lesser(cost.3, header) + row.loadUnaligned(fromByteOffset: 192, as: Lanes.self)
                // The cheapest state to leave after this block (its Golomb terminator included); the first on ties.
                let leave = (cost.0 + term.0, cost.1 + term.1, cost.2 + term.2, cost.3 + term.3)
                let leaving = minimum(lesser(lesser(leave.0, leave.1), lesser(leave.2, leave.3)))
                leavingState = firstLane(of: leaving, in: leave)
                let shift = Lanes(repeating: leaving)
                cost = (cost.0 - shift, cost.1 - shift, cost.2 - shift, cost.3 - shift)
            }
        }
        }
        }
        }
        precondition(setBits == nonzero, "mask has \(setBits) set bits, nonzeroCount is \(nonzero)")

        // Walk the cheapest path back.
        var state = firstLane(of: minimum(lesser(lesser(cost.0, cost.1), lesser(cost.2, cost.3))), in: cost)
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

    /// The lane-wise lesser of two vectors (the costs are never NaN). A plain compare and select:
    /// the standard library's `pointwiseMin` goes lane by lane for floating point.
    @inline(__always)
    static func lesser(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        a.replacing(with: b, where: b .< a)
    }

    /// The least lane, by halving.
    @inline(__always)
    static func minimum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .< v.lowHalf)
        let b = a.lowHalf.replacing(with: a.highHalf, where: a.highHalf .< a.lowHalf)
        let c = b.lowHalf.replacing(with: b.highHalf, where: b.highHalf .< b.lowHalf)
        return Swift.min(c[0], c[1])
    }

    /// Bit i set when lane i of `difference` is negative (its sign bit).
    @inline(__always)
    static func switchFlags(_ difference: SIMD16<Float>) -> UInt64 {
        gatherBits(SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(difference, to: SIMD16<UInt32>.self) &>> 31))
    }

    /// Bit i set when byte i is 1 (bytes are 0 or 1): eight bytes to a bit each by one multiplication.
    @inline(__always)
    static func gatherBits(_ bytes: SIMD16<UInt8>) -> UInt64 {
        let halves = unsafeBitCast(bytes, to: SIMD2<UInt64>.self)
        let gather: UInt64 = 0x0102_0408_1020_4080
        return (halves[0] &* gather) &>> 56 | ((halves[1] &* gather) &>> 56) &<< 8
    }

    /// The first of 64 lanes equal to `value` (which one of them holds).
    @inline(__always)
    static func firstLane(of value: Float,
                          in lanes: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) -> Int {
        let v = SIMD16<Float>(repeating: value)
        func equal(_ part: SIMD16<Float>) -> UInt64 {
            gatherBits(SIMD16<UInt8>(truncatingIfNeeded: SIMD16<Int32>(repeating: 0).replacing(with: 1, where: part .== v)))
        }
        let all = equal(lanes.0) | equal(lanes.1) &<< 16 | equal(lanes.2) &<< 32 | equal(lanes.3) &<< 48
        precondition(all != 0, "no lane holds the minimum")
        return all.trailingZeroBitCount
    }

    /// Estimated bits of a run header, charged on every switch.
    static let runHeaderBits: Float = 14

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
                writer.writeGolombGaps(words, from: start, to: end, golomb: golombParameters[parameter.index])
            }
            block = next
        }
    }

    /// The parameters the planner chooses among, and each one's modelled cost of a block by its kept count.
    struct PlanningStates: Sendable {
        /// Lanes of a cost row: 45 Golomb states, 15 Huffman states, 4 unused (cost +∞).
        static let lanes = 64
        static let shared = PlanningStates()

        var parameters: [RunParameter] = []
        var golombCount = 0
        /// Golomb states: 1/m, (m − 1)/(2m), 1 + (b − 1) + (m − t)/m.
        var inverseModulus: [Double] = []
        var halfRemainder: [Double] = []
        var perKept: [Double] = []
        /// Estimated bits of leaving each state: the Golomb terminator, 0 for Huffman.
        var terminatorBits = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
        /// Huffman states: mean code length of the bytes with i set bits, i = 0...8.
        var classLength: [[Double]] = []
        /// Row c (c = 0...256) holds every state's cost of a full block with c kept positions.
        var table: [Float] = []

        init() {
            // m ≤ 4096: refinement gives sparser runs their exact modulus.
            var terminators: [Float] = []
            var k = 0
            while k <= 144 {
                let g = golombParameters[k]
                let m = Double(g.modulus)
                parameters.append(RunParameter(isHuffman: false, index: k))
                inverseModulus.append(1 / m)
                halfRemainder.append((m - 1) / (2 * m))
                perKept.append(Double(1 + g.shortWidth) + (m - Double(min(g.threshold, g.modulus))) / m)
                terminators.append(Float(g.shortWidth + 2))
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
                terminators.append(0)
                classLength.append((0..<9).map { sums[$0] / counts[$0] })
            }
            precondition(parameters.count <= Self.lanes)
            terminators += [Float](repeating: 0, count: Self.lanes - parameters.count)
            terminators.withUnsafeBytes { raw in
                terminatorBits = (raw.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self),
                                  raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self),
                                  raw.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self),
                                  raw.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self))
            }
            let blockSize = 1 << blockShift
            var rows = [Float](repeating: 0, count: (blockSize + 1) * Self.lanes)
            rows.withUnsafeMutableBufferPointer { table in
                for c in 0...blockSize {
                    fillRow(UnsafeMutableBufferPointer(rebasing: table[(c * Self.lanes)..<((c + 1) * Self.lanes)]),
                            kept: c, length: blockSize)
                }
            }
            table = rows
        }

        /// Writes every state's modelled cost of a block of `length` positions with `kept` set.
        ///
        /// Golomb: z/m + c·(1 + b − 1 + (m − t)/m) − c·(m − 1)/(2m) with z = length − c (remainders taken
        /// as uniform). Huffman: the expected sum of code lengths over the block's bytes when its `kept`
        /// bits fall at random among them (a hypergeometric count of set bits per byte), and +∞ unless
        /// 1/16 ≤ c/length ≤ 15/16, where byte codes are never the better choice.
        func fillRow(_ row: UnsafeMutableBufferPointer<Float>, kept: Int, length: Int) {
            precondition(row.count == Self.lanes)
            let c = Double(kept)
            let z = Double(length - kept)
            for s in 0..<golombCount {
                row[s] = Float(max(0, z * inverseModulus[s] - c * halfRemainder[s]) + c * perKept[s])
            }
            let dense = kept * 16 >= length && kept * 16 <= 15 * length
            var bytesWithBits = [Double](repeating: 0, count: 9)
            if dense {
                let bytes = (length + 7) / 8
                let positions = bytes * 8
                // P(i set bits in a byte) = C(c, i)·C(N − c, 8 − i) / C(N, 8), N = 8·bytes.
                func choose(_ n: Int, _ k: Int) -> Double {
                    guard k >= 0 && k <= n else { return 0 }
                    var r = 1.0
                    for i in 0..<k { r = r * Double(n - i) / Double(i + 1) }
                    return r
                }
                let all = choose(positions, 8)
                for i in 0...8 { bytesWithBits[i] = Double(bytes) * choose(kept, i) * choose(positions - kept, 8 - i) / all }
            }
            for h in 0..<classLength.count {
                var bits = Double.infinity
                if dense {
                    bits = 0
                    for i in 0...8 { bits += bytesWithBits[i] * classLength[h][i] }
                }
                row[golombCount + h] = Float(bits)
            }
            for s in parameters.count..<Self.lanes { row[s] = .infinity }
        }
    }

    @inline(__always)
    static func zigzag(_ v: Int) -> Int { v >= 0 ? v << 1 : (-v << 1) - 1 }

    @inline(__always)
    static func gammaBits(_ v: Int) -> Int { 2 * (Int.bitWidth - v.leadingZeroBitCount) - 1 }
}
