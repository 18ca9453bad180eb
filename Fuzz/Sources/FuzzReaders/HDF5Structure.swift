import Glibc
@_spi(InProcess) @_spi(Fuzzing) import TaskVector

/// Target 7: an HDF5 file read by compeft's HDF5 reader (through libhdf5), after its checksummed
/// metadata (version 2 object headers, version 2/3 superblocks) has been sealed again, so that changes to
/// those structures reach the library and compeft's checks instead of the checksum.
///
/// Input: the file. The seeds are files written by libhdf5 (through h5py) with the default and the
/// newest file-format versions; ``HDF5Mutator`` changes them one structural field at a time.
func fuzzHDF5(_ body: UnsafeBufferPointer<UInt8>) {
    guard let path = writeSealedHDF5(body) else { return }
    if let contents = try? HDF5Reader.readInProcess(path: path, skipUnsupported: true) {
        for t in contents.tensors where t.dtype.isFloatingPoint && t.data.count <= 1 << 16 {
            var v = [Float](repeating: 0, count: t.data.count)
            v.withUnsafeMutableBufferPointer { t.data.loadFloats(from: 0, into: $0) }
        }
    }
}

/// Target 8: the files of target 7, read as compeft reads them — libhdf5 in the helper process
/// `compeft-hdf5-reader` (`COMPEFT_HDF5_READER` names it; scripts/fuzz.sh builds it) — through a session that
/// keeps one helper until it dies and then starts another (starting a program per input would allow ~30 runs a
/// second; compeft itself starts one per file). Every input must give tensors or a ``TaskVectorError``; a crash
/// of libhdf5 kills only the helper. The outcomes are counted and printed when the run ends. The helper is not
/// instrumented, so libFuzzer's coverage sees only this side: this target is a stress test of the isolation
/// (spawning, the wire, every way the helper ends), driven by target 7's mutator.
func fuzzHDF5Isolated(_ body: UnsafeBufferPointer<UInt8>) {
    guard let path = writeSealedHDF5(body) else { return }
    IsolatedOutcomes.shared.startOnce()
    do {
        let contents = try isolatedSession.read(path: path, skipUnsupported: true)
        IsolatedOutcomes.shared.count(contents.tensors.isEmpty ? "read, no tensor" : "read")
    } catch let error as TaskVectorError {
        if error.message.contains("is not installed") || error.message.contains("cannot start the HDF5 reader") {
            // Without its helper this target would test nothing: stop loudly.
            fatalError("target 8 needs compeft-hdf5-reader (scripts/fuzz.sh builds it): \(error)")
        }
        if error.message.contains("libhdf5 crashed") {
            IsolatedOutcomes.shared.count("libhdf5 crashed in the helper")
        } else if error.message.contains("more CPU time") {
            IsolatedOutcomes.shared.count("helper out of CPU time")
        } else if error.message.contains("compeft's HDF5 reader process") {
            IsolatedOutcomes.shared.count("helper failed otherwise")
        } else {
            IsolatedOutcomes.shared.count("refused: \(error.code)")
        }
    } catch {
        fatalError("HDF5Reader threw something other than a TaskVectorError: \(error)")
    }
}

/// Target 8's helper session.
nonisolated(unsafe) let isolatedSession: HDF5ReaderSession = {
    guard let helper = HDF5ReaderSession.findHelper() else {
        fatalError("target 8 needs compeft-hdf5-reader: set COMPEFT_HDF5_READER (scripts/fuzz.sh does)")
    }
    return HDF5ReaderSession(helper: helper)
}()

/// How target 8's reads ended, printed at exit.
final class IsolatedOutcomes: @unchecked Sendable {
    static let shared = IsolatedOutcomes()
    private var counts: [String: Int] = [:]
    private var started = false

    func startOnce() {
        guard !started else { return }
        started = true
        atexit {
            let lines = IsolatedOutcomes.shared.counts.sorted { $0.key < $1.key }.map { "stat::target8 \($0.key): \($0.value)" }
            let text = lines.joined(separator: "\n") + "\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
        }
    }

    func count(_ outcome: String) { counts[outcome, default: 0] += 1 }
}

/// Writes `body` with its HDF5 checksums sealed again (``HDF5Structure/reseal(_:)``) to the scratch file;
/// its path, or nil when it cannot be written.
func writeSealedHDF5(_ body: UnsafeBufferPointer<UInt8>) -> String? {
    var bytes = Array(body)
    HDF5Structure.reseal(&bytes)
    let path = hdf5ScratchPath
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return nil }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    return written == bytes.count ? path : nil
}

/// One scratch file per process, in memory where /dev/shm exists.
let hdf5ScratchPath: String = {
    let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(folder)/compeft-fuzz-\(getpid()).h5"
}()

/// Where the fields of an HDF5 file's metadata are: the superblock, object headers (version 1, found
/// through symbol tables; version 2, by signature) and their messages, B-tree, heap and symbol-table
/// nodes. A field is a byte range holding one number.
enum HDF5Structure {
    struct Field { var offset: Int; var width: Int }

    static func le(_ b: [UInt8], _ at: Int, _ n: Int) -> Int? {
        guard at >= 0, n <= 8, at + n <= b.count else { return nil }
        return (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) }
    }

    static func signatures(_ b: [UInt8], _ sig: String) -> [Int] {
        let s = Array(sig.utf8)
        guard b.count >= s.count else { return [] }
        return (0...(b.count - s.count)).filter { i in b[i] == s[0] && Array(b[i..<(i + s.count)]) == s }
    }

    /// Every field found, in file order.
    static func fields(_ b: [UInt8]) -> [Field] {
        var out: [Field] = []
        var objectHeaders: Set<Int> = []
        // Superblock at 0.
        if b.count >= 96, b[0] == 0x89, b[1] == 0x48, b[2] == 0x44, b[3] == 0x46 {
            if b[8] <= 1 {
                for o in 8..<16 { out.append(Field(offset: o, width: 1)) }
                out += [Field(offset: 16, width: 2), Field(offset: 18, width: 2), Field(offset: 20, width: 4)]
                for o in stride(from: 24, to: 96, by: 8) { out.append(Field(offset: o, width: 8)) }
                if let root = le(b, 64, 8) { objectHeaders.insert(root) }
            } else {
                for o in 8..<12 { out.append(Field(offset: o, width: 1)) }
                for o in stride(from: 12, to: 44, by: 8) { out.append(Field(offset: o, width: 8)) }
                if let root = le(b, 36, 8) { objectHeaders.insert(root) }
            }
        }
        // Symbol-table nodes: their entries point at (version 1) object headers.
        for s in signatures(b, "SNOD") {
            out += [Field(offset: s + 4, width: 1), Field(offset: s + 6, width: 2)]
            let n = le(b, s + 6, 2) ?? 0
            for e in 0..<min(n, 64) {
                let at = s + 8 + 40 * e
                guard at + 40 <= b.count else { break }
                out += [Field(offset: at, width: 8), Field(offset: at + 8, width: 8), Field(offset: at + 16, width: 4),
                        Field(offset: at + 24, width: 8), Field(offset: at + 32, width: 8)]
                if let oh = le(b, at + 8, 8) { objectHeaders.insert(oh) }
            }
        }
        for s in signatures(b, "TREE") {
            out += [Field(offset: s + 4, width: 1), Field(offset: s + 5, width: 1), Field(offset: s + 6, width: 2),
                    Field(offset: s + 8, width: 8), Field(offset: s + 16, width: 8)]
            let n = le(b, s + 6, 2) ?? 0
            for k in 0..<min(2 * n + 1, 130) where s + 24 + 8 * k + 8 <= b.count {
                out.append(Field(offset: s + 24 + 8 * k, width: 8))
            }
        }
        for s in signatures(b, "HEAP") {
            out += [Field(offset: s + 4, width: 1), Field(offset: s + 8, width: 8), Field(offset: s + 16, width: 8),
                    Field(offset: s + 24, width: 8)]
        }
        for s in signatures(b, "OHDR") { out += objectHeaderV2(b, at: s) }
        for oh in objectHeaders.sorted() where oh >= 0 && oh < b.count { out += objectHeaderV1(b, at: oh) }
        return out.filter { $0.offset >= 0 && $0.offset + $0.width <= b.count }
    }

    /// A version 1 object header and its messages (continuation blocks included, once).
    static func objectHeaderV1(_ b: [UInt8], at a: Int) -> [Field] {
        guard le(b, a, 1) == 1, let count = le(b, a + 2, 2), let size = le(b, a + 8, 4) else { return [] }
        var out = [Field(offset: a, width: 1), Field(offset: a + 2, width: 2), Field(offset: a + 4, width: 4), Field(offset: a + 8, width: 4)]
        var blocks = [(a + 16, size)]
        var seen = 0
        while let (start, length) = blocks.popLast(), seen < 8 {
            seen += 1
            var p = start
            var messages = 0
            while p + 8 <= min(b.count, start + length), messages < min(count, 64) {
                guard let type = le(b, p, 2), let n = le(b, p + 2, 2) else { break }
                out += [Field(offset: p, width: 2), Field(offset: p + 2, width: 2), Field(offset: p + 4, width: 1)]
                out += messageData(p + 8, n, b)
                // 8-byte fields read with their top bit set are negative: no block there.
                if type == 0x10, let o = le(b, p + 8, 8), let l = le(b, p + 16, 8), o >= 0, o < b.count, l >= 0 {
                    blocks.append((o, min(l, 1 << 16)))
                }
                p += 8 + (n + 7) / 8 * 8
                messages += 1
            }
        }
        return out
    }

    /// A version 2 object header ("OHDR") and the messages of its first chunk.
    static func objectHeaderV2(_ b: [UInt8], at s: Int) -> [Field] {
        guard let (start, end) = chunkV2(b, at: s) else { return [] }
        var out = [Field(offset: s + 4, width: 1), Field(offset: s + 5, width: 1), Field(offset: start - sizeWidth(b[s + 5]), width: sizeWidth(b[s + 5]))]
        let creationOrder = b[s + 5] & 0x04 != 0
        var p = start
        while p + 4 <= end {
            guard let n = le(b, p + 1, 2) else { break }
            out += [Field(offset: p, width: 1), Field(offset: p + 1, width: 2), Field(offset: p + 3, width: 1)]
            let data = p + 4 + (creationOrder ? 2 : 0)
            out += messageData(data, min(n, end - data), b)
            p = data + n
        }
        return out
    }

    static func sizeWidth(_ flags: UInt8) -> Int { 1 << Int(flags & 3) }

    /// Where the messages of an OHDR's first chunk start and end (its checksum follows at `end`).
    static func chunkV2(_ b: [UInt8], at s: Int) -> (Int, Int)? {
        guard s + 6 <= b.count, b[s + 4] == 2 else { return nil }
        let flags = b[s + 5]
        var p = s + 6
        if flags & 0x20 != 0 { p += 16 }
        if flags & 0x10 != 0 { p += 4 }
        let w = sizeWidth(flags)
        // An 8-byte size with its top bit set reads as a negative Int: no chunk.
        guard let size = le(b, p, w), size >= 0 else { return nil }
        p += w
        guard size <= b.count - p - 4 else { return nil }
        return (p, p + size)
    }

    /// A message's data as fields: bytes at the start (versions, flags, classes), then 4- and 8-byte words.
    static func messageData(_ at: Int, _ n: Int, _ b: [UInt8]) -> [Field] {
        // A message whose size runs past its chunk leaves nothing (n < 0) to take apart.
        guard n > 0 else { return [] }
        var out: [Field] = []
        for o in 0..<min(n, 8) { out.append(Field(offset: at + o, width: 1)) }
        for o in stride(from: 0, to: min(n, 64) - 3, by: 4) { out.append(Field(offset: at + o, width: 4)) }
        for o in stride(from: 0, to: min(n, 64) - 7, by: 8) { out.append(Field(offset: at + o, width: 8)) }
        return out
    }

    /// Recomputes the checksums of the superblock (versions 2, 3) and of every OHDR's first chunk.
    static func reseal(_ b: inout [UInt8]) {
        if b.count >= 48, b[0] == 0x89, b[1] == 0x48, b[8] >= 2, b[8] <= 3, b[9] == 8 {
            put(lookup3(b[0..<44]), at: 44, &b)
        }
        for s in signatures(b, "OHDR") {
            if let (_, end) = chunkV2(b, at: s) { put(lookup3(b[s..<end]), at: end, &b) }
        }
    }

    static func put(_ v: UInt32, at: Int, _ b: inout [UInt8]) {
        for k in 0..<4 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
    }

    /// Bob Jenkins' lookup3 `hashlittle` with initial value 0: HDF5's metadata checksum
    /// (`H5_checksum_lookup3`).
    static func lookup3(_ key: ArraySlice<UInt8>) -> UInt32 {
        func rot(_ x: UInt32, _ k: UInt32) -> UInt32 { (x << k) | (x >> (32 - k)) }
        var length = key.count
        var a = 0xDEAD_BEEF &+ UInt32(truncatingIfNeeded: length)
        var b = a, c = a
        var k = key.startIndex
        func word(_ at: Int, _ n: Int) -> UInt32 {
            (0..<n).reduce(UInt32(0)) { $0 | UInt32(key[at + $1]) << (8 * UInt32($1)) }
        }
        while length > 12 {
            a &+= word(k, 4); b &+= word(k + 4, 4); c &+= word(k + 8, 4)
            a &-= c; a ^= rot(c, 4); c &+= b
            b &-= a; b ^= rot(a, 6); a &+= c
            c &-= b; c ^= rot(b, 8); b &+= a
            a &-= c; a ^= rot(c, 16); c &+= b
            b &-= a; b ^= rot(a, 19); a &+= c
            c &-= b; c ^= rot(b, 4); b &+= a
            length -= 12
            k += 12
        }
        if length == 0 { return c }
        a &+= word(k, min(length, 4))
        if length > 4 { b &+= word(k + 4, min(length - 4, 4)) }
        if length > 8 { c &+= word(k + 8, length - 8) }
        c ^= b; c &-= rot(b, 14)
        a ^= c; a &-= rot(c, 11)
        b ^= a; b &-= rot(a, 25)
        c ^= b; c &-= rot(b, 16)
        a ^= c; a &-= rot(c, 4)
        b ^= a; b &-= rot(a, 14)
        c ^= b; c &-= rot(b, 24)
        return c
    }
}

/// Changes an HDF5 file one metadata field at a time (see ``HDF5Structure/fields(_:)``): to an edge
/// value, to a neighbour of its value, or to another field's value (an address pointing elsewhere).
enum HDF5Mutator {
    static func mutate(_ data: UnsafeMutablePointer<UInt8>, size: Int, maxSize: Int, seed: UInt32) -> Int {
        var b = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
        let fields = HDF5Structure.fields(b)
        guard !fields.isEmpty else { return 0 }
        var rng = SplitMix(seed: UInt64(seed))
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            let f = fields[Int(rng.next() % UInt64(fields.count))]
            let old = HDF5Structure.le(b, f.offset, f.width) ?? 0
            let other = fields[Int(rng.next() % UInt64(fields.count))]
            let value: Int
            switch rng.next() % 6 {
            case 0: value = [0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 65535, -1, Int.max, b.count, b.count - 1, b.count + 8][Int(rng.next() % 16)]
            case 1: value = old &+ 1
            case 2: value = old &- 1
            case 3: value = old &* 2 &+ Int(rng.next() % 2)
            case 4: value = HDF5Structure.le(b, other.offset, other.width) ?? 0
            default: value = old ^ (1 << Int(rng.next() % UInt64(8 * f.width)))
            }
            for k in 0..<f.width { b[f.offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        }
        HDF5Structure.reseal(&b)
        guard b.count + 1 <= maxSize else { return 0 }
        b.withUnsafeBufferPointer { (data + 1).update(from: $0.baseAddress!, count: b.count) }
        return b.count + 1
    }
}
