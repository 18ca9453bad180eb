/// A Huffman code over mask bytes for values kept independently with probability p = j / 64.
///
/// The code is a function of `j` alone, so the stream carries `j` and never a table. Byte s with
/// c set bits has weight j^c · (64 − j)^(8−c), an exact integer. Lengths come from the two-queue
/// Huffman construction over the 256 leaves sorted by (weight, byte), merging a leaf before a node of
/// equal weight, so every platform builds the same code; codes are then canonical: ordered by
/// (length, byte), each code word the previous plus one, shifted left where the length grows. Code
/// words go into the stream first bit first, that is, bit-reversed in the LSB-first layout.
///
/// Coding eight positions per symbol brings a prefix code within 0.4 % of d·H(p) + n for
/// 0.25 ≤ p ≤ 0.75, where a Golomb code on gaps wastes up to 2 % (p ≈ 0.4).
struct ByteHuffmanCode: Sendable {
    /// The values of j the stream may carry (p from 1/16 to 15/16).
    static let indices = 4...60
    /// Bits resolved by one lookup in ``ByteHuffmanCode/fastTable``.
    static let fastBits = 11

    /// The code for every j in ``indices``, built once.
    static let all: [ByteHuffmanCode] = indices.map(ByteHuffmanCode.init(j:))

    /// The code for `j` in ``indices``.
    @inline(__always)
    static func code(_ j: Int) -> ByteHuffmanCode { all[j &- indices.lowerBound] }

    let j: Int
    /// Code word of each byte, bit-reversed (first stream bit in bit 0).
    let words: [UInt64]
    /// Code length of each byte in bits.
    let lengths: [UInt8]
    /// Indexed by the next ``fastBits`` stream bits: byte | length << 8, or 0 for a longer code.
    let fastTable: [UInt16]
    /// Codes of each length, 0...maxLength.
    let lengthCounts: [Int]
    /// Bytes in canonical order (by length, then value).
    let canonicalOrder: [UInt8]

    init(j: Int) {
        self.j = j
        var weight = [UInt64](repeating: 1, count: 256)
        for s in 0..<256 {
            let c = s.nonzeroBitCount
            for _ in 0..<c { weight[s] &*= UInt64(j) }
            for _ in c..<8 { weight[s] &*= UInt64(64 - j) }
        }
        let leaves = (0..<256).sorted { (weight[$0], $0) < (weight[$1], $1) }
        // Two-queue Huffman: nodes 0..<256 are leaves (by sorted rank), 256... are merges.
        var parent = [Int](repeating: -1, count: 511)
        var nodeWeight = leaves.map { weight[$0] }
        var nextLeaf = 0
        var nextNode = 256
        func takeSmallest() -> Int {
            if nextLeaf < 256 && (nextNode >= nodeWeight.count || nodeWeight[nextLeaf] <= nodeWeight[nextNode]) {
                nextLeaf += 1
                return nextLeaf - 1
            }
            nextNode += 1
            return nextNode - 1
        }
        for _ in 0..<255 {
            let a = takeSmallest()
            let b = takeSmallest()
            parent[a] = nodeWeight.count
            parent[b] = nodeWeight.count
            nodeWeight.append(nodeWeight[a] + nodeWeight[b])
        }
        var depth = [Int](repeating: 0, count: 511)
        for node in stride(from: 509, through: 0, by: -1) { depth[node] = depth[parent[node]] + 1 }
        var lengths = [UInt8](repeating: 0, count: 256)
        for rank in 0..<256 { lengths[leaves[rank]] = UInt8(depth[rank]) }

        let order = (0..<256).sorted { (lengths[$0], $0) < (lengths[$1], $1) }
        let maxLength = Int(lengths[order[255]])
        var counts = [Int](repeating: 0, count: maxLength + 1)
        var words = [UInt64](repeating: 0, count: 256)
        var code: UInt64 = 0
        var previous = Int(lengths[order[0]])
        for s in order {
            let length = Int(lengths[s])
            code <<= UInt64(length - previous)
            previous = length
            words[s] = code.bitReversed(width: length)
            counts[length] += 1
            code += 1
        }
        var table = [UInt16](repeating: 0, count: 1 << Self.fastBits)
        for s in 0..<256 where Int(lengths[s]) <= Self.fastBits {
            let length = Int(lengths[s])
            for fill in 0..<(1 << (Self.fastBits - length)) {
                table[Int(words[s]) | fill << length] = UInt16(s) | UInt16(length) << 8
            }
        }
        self.words = words
        self.lengths = lengths
        self.fastTable = table
        self.lengthCounts = counts
        self.canonicalOrder = order.map { UInt8($0) }
    }

    /// Bits this code spends on a block with the given byte histogram.
    func cost(_ histogram: UnsafeBufferPointer<Int>) -> Int {
        var bits = 0
        for s in 0..<256 { bits &+= histogram[s] &* Int(lengths[s]) }
        return bits
    }

    /// Decodes a code word longer than ``fastBits``, one bit at a time (canonical decoding).
    ///
    /// - Throws: ``QuantizeError`` when the stream ends inside the code word.
    func decodeSlow(_ reader: inout BitReader) throws -> UInt8 {
        var code = 0
        var first = 0
        var index = 0
        for length in 1..<lengthCounts.count {
            code |= Int(reader.read(1))
            let count = lengthCounts[length]
            if code - first < count { 
                guard !reader.isOverrun else { break }
                return canonicalOrder[index + code - first] 
            }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        throw QuantizeError("gap stream: truncated in a mask byte at bit \(reader.position)")
    }
}
