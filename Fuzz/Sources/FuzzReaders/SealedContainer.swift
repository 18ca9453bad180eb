@_spi(Fuzzing) import AdapterFormat
import TaskVector

/// Target 5: a container whose decoded index and payloads are changed field by field, then sealed again
/// (every payload checksum, the index checksum and the trailer recomputed), so that each change reaches
/// the checks and decoders behind the checksums instead of stopping at them.
///
/// Input: u16 program length P, P bytes of program, then a format 1.1 container (the seeds are real
/// containers). The container is taken apart without checking its checksums; each 4 program bytes
/// `op, t, a, v` change one thing (``mutate(_:op:t:a:v:)``); the result is sealed and read as target 1
/// reads a container, every payload decoded.
func fuzzSealedContainer(_ body: UnsafeBufferPointer<UInt8>) {
    guard body.count >= 2 else { return }
    let programLength = min(Int(body[0]) | Int(body[1]) << 8, body.count - 2)
    let program = Array(body[2..<(2 + programLength)])
    guard var parts = ContainerSealing.unseal(Array(body[(2 + programLength)...])) else { return }
    var i = 0
    while i + 4 <= program.count {
        mutate(&parts, op: program[i], t: Int(program[i + 1]), a: program[i + 2], v: program[i + 3])
        i += 4
    }
    guard let sealed = ContainerSealing.seal(parts) else { return }
    readContainer(sealed)
}

/// Integers that sit on the edges the reader checks: zero, one, byte and word boundaries, the gap
/// coder's and the index's limits, and the top of `Int`.
private let edges: [Int] = [
    0, 1, 2, 3, 7, 8, 63, 64, 255, 256, 4095, 4096, 65535, 65536, 1 << 20, (1 << 20) + 1, 1 << 24, 1 << 31, 1 << 32,
    (1 << 32) + 1, 1 << 40, 1 << 44, 1 << 48, (1 << 48) + 1, 1 << 56, 1 << 62, Int.max / 2, Int.max - 1, Int.max,
]

/// A value for a count-like field: an edge, or one near `near` (the tensor's own count, say).
private func pick(_ v: UInt8, near: Int) -> Int {
    switch v % 4 {
    case 0: return edges[Int(v / 4) % edges.count]
    case 1: return max(0, near - Int(v / 4) % 3)
    case 2: return near &+ Int(v / 4) % 3 &+ 1 < 0 ? near : near + Int(v / 4) % 3 + 1
    default: return Int(v / 4)
    }
}

/// Float bit patterns a scale or threshold must be checked for.
private let floatEdges: [UInt32] = [
    0, 0x8000_0000, 0x0000_0001, 0x0080_0000, 0x3F80_0000, 0xBF80_0000, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F80_0000,
    0xFF80_0000, 0x7FC0_0000, 0x7FA0_0000, 0x3380_0000, 0x4B80_0000,
]

private let names: [String] = ["", "a", "../x", "a/b", ".", "..", "/etc/passwd", "x\u{0}y", "\u{FFFD}", String(repeating: "n", count: 300)]
private let fileNames: [String] = [
    "adapter_model.safetensors", "", "../x.safetensors", "a/b", ".", "..", "model-00002-of-00002.safetensors", "\u{0}",
]

/// Changes one field of `parts` (t picks the tensor or file, a and v the change).
private func mutate(_ parts: inout ContainerSealing.Parts, op: UInt8, t: Int, a: UInt8, v: UInt8) {
    let tensors = parts.index.tensors.count
    if tensors == 0 && op % 16 < 14 { return }
    let k = tensors == 0 ? 0 : t % tensors
    switch op % 16 {
    case 0:  // one dimension
        let rank = parts.index.tensors[k].shape.count
        if rank == 0 { parts.index.tensors[k].shape = [pick(v, near: 1)]; return }
        let d = Int(a) % rank
        parts.index.tensors[k].shape[d] = pick(v, near: parts.index.tensors[k].shape[d])
    case 1:  // the rank
        if a & 1 == 0, !parts.index.tensors[k].shape.isEmpty {
            parts.index.tensors[k].shape.removeLast()
        } else {
            parts.index.tensors[k].shape.insert(pick(v, near: 1), at: Int(a / 2) % (parts.index.tensors[k].shape.count + 1))
        }
    case 2:
        parts.index.tensors[k].encoding = Int(v % 6)
    case 3:
        let t = parts.index.tensors[k]
        parts.index.tensors[k].nonzero = pick(v, near: a & 1 == 0 ? t.nonzero : t.count)
        parts.index.tensors[k].kept = max(parts.index.tensors[k].kept, parts.index.tensors[k].nonzero)
    case 4:
        parts.index.tensors[k].kept = parts.index.tensors[k].nonzero + (a & 1 == 0 ? Int(v) : pick(v, near: 0))
    case 5:
        parts.index.tensors[k].dtype = DType.allCases[Int(v) % DType.allCases.count]
    case 6:
        let bits = a & 1 == 0 ? floatEdges[Int(v) % floatEdges.count] : UInt32(v) << 24 | UInt32(a) << 16
        parts.index.tensors[k].scaleBits = bits
        parts.index.tensors[k].scale = Float(bitPattern: bits)
    case 7:  // one byte of the payload (its decoded bytes when framed: the packing behind zstd)
        let n = parts.tensorPayloads[k].bytes.count
        if n > 0 { parts.tensorPayloads[k].bytes[(Int(a) * 257 + Int(v)) % n] ^= v | 1 }
    case 8:  // the payload's length
        let n = parts.tensorPayloads[k].bytes.count
        if a < 128 {
            parts.tensorPayloads[k].bytes.removeLast(n - n * Int(a) / 128)
        } else {
            parts.tensorPayloads[k].bytes += [UInt8](repeating: v, count: Int(a - 127))
        }
    case 9:  // bytes move to the next payload: the lengths change, the payload area does not
        guard k + 1 < tensors else { return }
        let moved = parts.tensorPayloads[k].bytes.suffix(Int(a))
        parts.tensorPayloads[k].bytes.removeLast(moved.count)
        parts.tensorPayloads[k + 1].bytes.insert(contentsOf: moved, at: 0)
    case 10:
        let other = parts.index.tensors[Int(v) % tensors].name
        parts.index.tensors[k].name = a & 1 == 0 ? names[Int(v) % names.count] : other + String(UnicodeScalar(a))
    case 11:
        parts.index.tensors[k].file = a & 1 == 0 ? fileNames[Int(v) % fileNames.count] : parts.index.tensors[Int(v) % tensors].file
    case 12:
        if a & 1 == 0 {
            parts.index.tensors[k].role = parts.index.tensors[k].role == .exact ? .residual : .exact
        } else {
            parts.index.tensors[k].initRule = InitRule.allCases[Int(v) % InitRule.allCases.count]
        }
    case 13:  // a tensor fewer, or one more (a copy under a new name)
        if a & 1 == 0, tensors > 1 {
            parts.index.tensors.remove(at: k)
            parts.tensorPayloads.remove(at: k)
        } else {
            var copy = parts.index.tensors[k]
            copy.name += "~\(v)"
            parts.index.tensors.append(copy)
            parts.tensorPayloads.append(parts.tensorPayloads[k])
        }
    case 14:  // the container's compression group
        var c = parts.index.compression
        switch a % 8 {
        case 0: c.density = [1e-300, 1e-9, 0.5, 1, 29, 99.999, 100][Int(v) % 7]
        case 1: c.total = pick(v, near: c.total ?? 0)
        case 2: c.keptCount = pick(v, near: c.keptCount ?? 0)
        case 3: c.keptNonzero = pick(v, near: c.keptNonzero ?? 0)
        case 4: c.scale = Float(bitPattern: floatEdges[Int(v) % floatEdges.count])
        case 5: c.threshold = Float(bitPattern: floatEdges[Int(v) % floatEdges.count])
        case 6: c.sigma = [0, 1e-320, 1, 1e300][Int(v) % 4]
        default:
            if c.total == nil {
                (c.total, c.keptCount, c.keptNonzero, c.scale, c.threshold, c.sigma) = (Int(v), Int(v) / 2, Int(v) / 4, 0.5, 0.1, 0.2)
            } else {
                (c.total, c.keptCount, c.keptNonzero) = (nil, nil, nil)
            }
        }
        parts.index.compression = c
    default:  // verbatim files, and whether a payload is framed
        if a % 4 == 0, tensors > 0 {
            parts.tensorPayloads[k].framed.toggle()
            return
        }
        guard !parts.index.files.isEmpty else { return }
        let f = t % parts.index.files.count
        let name = parts.index.files[f].name
        switch a % 4 {
        case 1:
            if parts.index.files[f].inline == true {
                var bytes = parts.inlineFiles[name] ?? []
                if bytes.isEmpty { bytes = [v] } else { bytes[Int(v) % bytes.count] ^= a | 1 }
                parts.inlineFiles[name] = bytes
            } else if !parts.filePayloads[f].bytes.isEmpty {
                parts.filePayloads[f].bytes[Int(v) % parts.filePayloads[f].bytes.count] ^= a | 1
            }
        case 2:
            let renamed = fileNames[Int(v) % fileNames.count]
            parts.index.files[f].name = renamed
            if let bytes = parts.inlineFiles.removeValue(forKey: name) { parts.inlineFiles[renamed] = bytes }
        default:
            parts.index.files[f].inline = parts.index.files[f].inline == true ? nil : true
            if parts.index.files[f].inline == true, parts.inlineFiles[name] == nil { parts.inlineFiles[name] = parts.filePayloads[f].bytes }
        }
    }
}
