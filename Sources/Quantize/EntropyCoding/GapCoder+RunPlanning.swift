// Run planning: which parameter each block of the mask is coded with, as a shortest path over blocks.

extension GapCoder {
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

    /// Estimated bits of a run header, charged on every switch.
    static let runHeaderBits: Float = 14

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
}
