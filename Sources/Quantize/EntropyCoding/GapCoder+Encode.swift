// Encoding: the header, the signs, and the runs of the mask as the plan (GapCoder+RunPlanning.swift) chose them.

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

    @inline(__always)
    static func zigzag(_ v: Int) -> Int { v >= 0 ? v << 1 : (-v << 1) - 1 }
}
