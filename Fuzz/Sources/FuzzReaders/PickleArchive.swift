import TaskVector

/// Target 6: a `torch.save` pickle, wrapped here into a valid archive (stored entries, correct CRC-32s),
/// so that changes to the pickle reach the restricted unpickler and the tensor checks instead of the
/// archive's checksums.
///
/// Input: u8 storage count K (at most 8), K × u32 storage sizes in bytes (little-endian, the low 12 bits: at most 4095
/// each), then `data.pkl`. The archive holds `archive/data.pkl`, `archive/data/0` … `archive/data/K-1`
/// (filled with a fixed pattern) and `archive/version`. The seeds are the pickles and storage sizes of
/// real `torch.save` files; ``PickleMutator`` changes them one opcode at a time.
func fuzzPickleArchive(_ body: UnsafeBufferPointer<UInt8>) {
    guard let (sizes, pickleStart) = pickleLayout(body) else { return }
    var entries: [(String, [UInt8])] = [("archive/data.pkl", Array(body[pickleStart...])), ("archive/version", Array("3\n".utf8))]
    for (k, size) in sizes.enumerated() {
        entries.append(("archive/data/\(k)", (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ k) }))
    }
    _ = try? TorchBinReader.load(file: MappedFile(path: "fuzz.bin", contents: storedZip(entries)))
}

/// The storage sizes and where the pickle starts, or `nil` for an input too short to hold them.
func pickleLayout(_ body: UnsafeBufferPointer<UInt8>) -> (sizes: [Int], pickleStart: Int)? {
    guard let first = body.first else { return nil }
    let count = Int(first % 9)
    guard body.count >= 1 + 4 * count else { return nil }
    let sizes = (0..<count).map { k in
        (0..<4).reduce(0) { $0 | Int(body[1 + 4 * k + $1]) << (8 * $1) } & 0xFFF
    }
    return (sizes, 1 + 4 * count)
}

/// A ZIP archive of stored (uncompressed) entries with correct CRC-32s, as `torch.save` writes them.
func storedZip(_ entries: [(String, [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    func le16(_ v: Int, _ to: inout [UInt8]) { to += [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func le32(_ v: UInt32, _ to: inout [UInt8]) { to += (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    for (name, data) in entries {
        let offset = out.count
        let crc = crc32(data)
        let nameBytes = Array(name.utf8)
        le32(0x0403_4B50, &out)
        le16(20, &out); le16(0, &out); le16(0, &out); le16(0, &out); le16(0, &out)
        le32(crc, &out); le32(UInt32(data.count), &out); le32(UInt32(data.count), &out)
        le16(nameBytes.count, &out); le16(0, &out)
        out += nameBytes
        out += data
        le32(0x0201_4B50, &central)
        le16(20, &central); le16(20, &central); le16(0, &central); le16(0, &central); le16(0, &central); le16(0, &central)
        le32(crc, &central); le32(UInt32(data.count), &central); le32(UInt32(data.count), &central)
        le16(nameBytes.count, &central); le16(0, &central); le16(0, &central); le16(0, &central); le16(0, &central)
        le32(0, &central); le32(UInt32(offset), &central)
        central += nameBytes
    }
    let centralOffset = out.count
    out += central
    le32(0x0605_4B50, &out)
    le16(0, &out); le16(0, &out); le16(entries.count, &out); le16(entries.count, &out)
    le32(UInt32(central.count), &out); le32(UInt32(centralOffset), &out); le16(0, &out)
    return out
}

private let crcTable: [UInt32] = (0..<256).map { n in
    (0..<8).reduce(UInt32(n)) { c, _ in c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
}

func crc32(_ data: [UInt8]) -> UInt32 {
    ~data.reduce(~UInt32(0)) { crcTable[Int(($0 ^ UInt32($1)) & 0xFF)] ^ ($0 >> 8) }
}

/// Changes a pickle one opcode at a time: an opcode removed, repeated, moved, replaced by another with
/// a well-formed argument, or its argument set to an edge value; the stream stays a sequence of whole
/// opcodes, so the changes reach the unpickler's handling of each opcode rather than its tokenizer.
enum PickleMutator {
    /// One opcode: where it starts and ends in the stream.
    struct Op { var start: Int; var end: Int; var code: UInt8 }

    /// Splits a pickle into opcodes; an unknown opcode or a truncated argument ends the list there.
    static func opcodes(_ p: [UInt8]) -> [Op] {
        var ops: [Op] = []
        var i = 0
        /// A little-endian length, `nil` when it is cut short or longer than the stream.
        func le(_ at: Int, _ n: Int) -> Int? {
            guard at + n <= p.count else { return nil }
            let value = (0..<n).reduce(UInt64(0)) { $0 | UInt64(p[at + $1]) << (8 * UInt64($1)) }
            return value <= UInt64(p.count) ? Int(value) : nil
        }
        while i < p.count {
            let code = p[i]
            var end: Int?
            switch code {
            case 0x4B, 0x71, 0x68, 0x80, 0x82: end = i + 2  // BININT1 BINPUT BINGET PROTO EXT1
            case 0x4D, 0x83: end = i + 3  // BININT2 EXT2
            case 0x4A, 0x72, 0x6A, 0x84: end = i + 5  // BININT LONG_BINPUT LONG_BINGET EXT4
            case 0x47, 0x95: end = i + 9  // BINFLOAT FRAME
            case 0x8A, 0x55, 0x43, 0x8C: end = le(i + 1, 1).map { i + 2 + $0 }  // LONG1 SHORT_BINSTRING/BYTES/UNICODE
            case 0x58, 0x54, 0x42, 0x8B: end = le(i + 1, 4).map { i + 5 + $0 }  // BINUNICODE BINSTRING BINBYTES LONG4
            case 0x8D, 0x8E, 0x96: end = le(i + 1, 8).map { i + 9 + $0 }  // BINUNICODE8 BINBYTES8 BYTEARRAY8
            case 0x63, 0x69:  // GLOBAL, INST: two lines
                if let a = p[(i + 1)...].firstIndex(of: 0x0A), let b = p[(a + 1)...].firstIndex(of: 0x0A) { end = b + 1 }
            case 0x49, 0x4C, 0x53, 0x56, 0x46, 0x70, 0x67, 0x50:  // INT LONG STRING UNICODE FLOAT PUT GET PERSID
                if let a = p[(i + 1)...].firstIndex(of: 0x0A) { end = a + 1 }
            case 0x28, 0x29, 0x5D, 0x7D, 0x8F, 0x2E, 0x30, 0x31, 0x32, 0x4E, 0x88, 0x89, 0x85, 0x86, 0x87, 0x74, 0x6C,
                 0x64, 0x61, 0x65, 0x73, 0x75, 0x52, 0x62, 0x51, 0x94, 0x81, 0x92, 0x93, 0x90, 0x91, 0x97, 0x98:
                end = i + 1
            default: end = nil
            }
            guard let e = end, e > i, e <= p.count else { break }
            ops.append(Op(start: i, end: e, code: code))
            i = e
        }
        return ops
    }

    /// Opcodes with arguments that a torch state dict uses, and some it must refuse.
    static let replacements: [[UInt8]] = [
        [0x7D], [0x5D], [0x29], [0x28], [0x2E], [0x4E], [0x88], [0x89], [0x85], [0x86], [0x87], [0x74], [0x52], [0x62],
        [0x73], [0x75], [0x61], [0x65], [0x51], [0x94], [0x30], [0x31], [0x32], [0x81], [0x8F], [0x90], [0x91],
        [0x4B, 0x00], [0x4B, 0xFF], [0x4D, 0xFF, 0xFF], [0x4A, 0xFF, 0xFF, 0xFF, 0x7F], [0x4A, 0xFF, 0xFF, 0xFF, 0xFF],
        [0x8A, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], [0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0x71, 0x00], [0x68, 0x00], [0x68, 0x01], [0x72, 0xFF, 0xFF, 0x0F, 0x00], [0x6A, 0xFF, 0xFF, 0xFF, 0xFF],
        [0x47, 0x7F, 0xF8, 0, 0, 0, 0, 0, 0], [0x47, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0],
        Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8), Array("ccollections\nOrderedDict\n".utf8),
        Array("ctorch\nFloatStorage\n".utf8), Array("ctorch\nHalfStorage\n".utf8), Array("ctorch\nBFloat16Storage\n".utf8),
        Array("ctorch\nLongStorage\n".utf8), Array("ctorch\nBoolStorage\n".utf8), Array("cos\nsystem\n".utf8),
        Array("cbuiltins\neval\n".utf8), Array("ctorch._utils\n_rebuild_parameter\n".utf8),
        Array("ctorch\n_utils\n".utf8), [0x8C, 0x07] + Array("storage".utf8), [0x8C, 0x03] + Array("cpu".utf8),
        [0x8C, 0x01, 0x30], [0x8C, 0x01, 0x31], [0x8C, 0x00], [0x8C, 0x02, 0x2E, 0x2E], [0x8C, 0x01, 0x2F],
        [0x58, 0x05, 0, 0, 0] + Array("w.one".utf8), [0x58, 0xFF, 0xFF, 0xFF, 0x7F], [0x51], [0x80, 0x02], [0x80, 0x05],
        [0x95, 0x10, 0, 0, 0, 0, 0, 0, 0], [0x4C] + Array("123456789012345678901234567890L\n".utf8),
    ]

    /// Mutates the pickle part of a target-6 input in place; returns the new size.
    static func mutate(_ data: UnsafeMutablePointer<UInt8>, size: Int, maxSize: Int, seed: UInt32) -> Int {
        let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
        guard let (sizes, start) = pickleLayout(body) else { return 0 }
        var rng = SplitMix(seed: UInt64(seed))
        var prefix = Array(UnsafeBufferPointer(start: data, count: 1 + start))
        var pickle = Array(body[start...])
        let ops = opcodes(pickle)
        let choice = rng.next() % 8
        if choice == 7 && !sizes.isEmpty {
            // A storage size changes (its element count no longer matching the pickle's).
            let k = Int(rng.next() % UInt64(sizes.count))
            let size = [0, 1, 2, 4, sizes[k] - 1, sizes[k] + 1, sizes[k] * 2, 65535][Int(rng.next() % 8)]
            for b in 0..<4 { prefix[2 + 4 * k + b] = UInt8(truncatingIfNeeded: max(0, size) >> (8 * b)) }
        } else if ops.isEmpty {
            pickle = replacements[Int(rng.next() % UInt64(replacements.count))] + pickle
        } else {
            let a = ops[Int(rng.next() % UInt64(ops.count))]
            let b = ops[Int(rng.next() % UInt64(ops.count))]
            switch choice {
            case 0: pickle.removeSubrange(a.start..<a.end)
            case 1: pickle.insert(contentsOf: pickle[a.start..<a.end], at: b.start)
            case 2: pickle.replaceSubrange(a.start..<a.end, with: replacements[Int(rng.next() % UInt64(replacements.count))])
            case 3: pickle.insert(contentsOf: replacements[Int(rng.next() % UInt64(replacements.count))], at: a.start)
            case 4:  // a run of opcodes copied elsewhere
                let lo = min(a.start, b.start), hi = max(a.end, b.end)
                let c = ops[Int(rng.next() % UInt64(ops.count))]
                pickle.insert(contentsOf: pickle[lo..<hi], at: c.start)
            case 5:  // an argument byte set to an edge
                if a.end - a.start > 1 {
                    let at = a.start + 1 + Int(rng.next() % UInt64(a.end - a.start - 1))
                    pickle[at] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x2F, 0x2E, 0x0A][Int(rng.next() % 8)]
                }
            default:  // two opcodes swap
                if a.start < b.start, a.end <= b.start {
                    let first = Array(pickle[a.start..<a.end]), second = Array(pickle[b.start..<b.end])
                    pickle.replaceSubrange(b.start..<b.end, with: first)
                    pickle.replaceSubrange(a.start..<a.end, with: second)
                }
            }
        }
        let out = prefix + pickle
        guard out.count <= maxSize else { return 0 }
        out.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: out.count) }
        return out.count
    }
}

/// A small seeded generator for the mutators (the run is reproducible from libFuzzer's seed).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
