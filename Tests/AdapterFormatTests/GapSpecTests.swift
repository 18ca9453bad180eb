import AdapterFormat
import Fixtures
import Foundation
@testable import Quantize
import TaskVector
import Testing

/// docs/FORMAT.md "Encoding 3: ternary-gap" checked against an independent reader written from it
/// (Fixtures/decode_gap.py): every stream compeft writes must decode there to the same mask and signs, and
/// damaged streams must be refused by both readers alike.
@Suite(.enabled(if: GapSpecReader.isAvailable || Python.isCI,
                "needs python3 and zstd (the zstandard module or the zstd command) for Fixtures/decode_gap.py"))
struct GapSpecTests {
    @Test func codeTablesMatchTheSpec() throws {
        let tables = try GapSpecReader.run(["--tables"])
        let moduli = try #require(tables["moduli"] as? [Int])
        #expect(moduli == GolombParameter.indices.map { GolombParameter(index: $0).modulus })
        let lengths = try #require(tables["huffman"] as? [String: [Int]])
        let words = try #require(tables["huffmanWords"] as? [String: [Int]])
        #expect(Set(lengths.keys) == Set(ByteHuffmanCode.indices.map(String.init)))
        for j in ByteHuffmanCode.indices {
            let code = ByteHuffmanCode.code(j)
            #expect(lengths[String(j)] == code.lengths.map(Int.init), "lengths for j = \(j)")
            // compeft keeps its code words bit-reversed (first stream bit lowest); the spec gives their value.
            let values = (0..<256).map { s in
                (0..<Int(code.lengths[s])).reduce(0) { v, k in v << 1 | Int(code.words[s] >> UInt64(k) & 1) }
            }
            #expect(words[String(j)] == values, "code words for j = \(j)")
        }
    }

    struct FixtureCase: Sendable, CustomTestStringConvertible {
        var fixture: String
        var base: String?
        var density: Double
        var testDescription: String { "\(fixture) at \(density) %" }
    }

    @Test(arguments: [FixtureCase(fixture: "residual.safetensors", density: 5), FixtureCase(fixture: "residual.safetensors", density: 30),
                      FixtureCase(fixture: "full-ft", base: "tiny-bert", density: 10), FixtureCase(fixture: "full-ft", base: "tiny-bert", density: 40)])
    func fixtureContainersDecodeTheSame(_ c: FixtureCase) throws {
        let input = try TaskVectorInput.load(path: Fixtures.path(c.fixture), base: c.base.map(Fixtures.path))
        let found = try compressAndCompare(input, density: c.density, name: "\(c.fixture)-\(c.density)")
        #expect(found.tensors > 0, "no tensor of \(c.testDescription) uses encoding 3")
    }

    @Test func syntheticTensorsUseBothModesAndDecodeTheSame() throws {
        var g = GapSpecGenerator(seed: 7)
        // Row densities cycle through dense, sparse, empty and medium rows; the tensor ends in a dense row
        // and holds 3 mod 8 values, so its last Huffman byte is partial.
        let rows = [0.45, 0.004, 0, 0.12, 0.45, 0.45, 0.02, 0.3]
        let clustered = GapSpecGenerator.Plan(shape: [383, 517]) { i in i >= 382 * 517 ? 0.5 : rows[(i / 517) % rows.count] }
        let dense = GapSpecGenerator.Plan(shape: [300, 301]) { _ in 0.35 }  // 4 mod 8 values
        let sparse = GapSpecGenerator.Plan(shape: [256, 257]) { _ in 0.003 }
        let tiny = GapSpecGenerator.Plan(shape: [5, 3]) { _ in 0.5 }
        var tensors: [SourceTensor] = []
        var big = 0
        var total = 0
        for (name, plan) in [("clustered.weight", clustered), ("dense.weight", dense), ("sparse.weight", sparse), ("tiny.weight", tiny)] {
            let (bytes, bigCount) = g.values(plan)
            big += bigCount
            total += plan.count
            tensors.append(SourceTensor(name: name, dtype: .f32, shape: plan.shape, fileName: "x.safetensors", role: .residual,
                                        initRule: .zero, data: TensorData(dtype: .f32, copying: bytes)))
        }
        let input = TaskVectorInput(kind: .residual, tensors: tensors, fileMetadata: [:], auxiliaryFiles: [], adapterConfig: nil,
                                    sourceFiles: [], inputBytes: total * 4)
        // Just under the share of large values, so the kept positions are (almost) exactly the planned ones.
        let found = try compressAndCompare(input, density: 97 * Double(big) / Double(total), name: "synthetic")
        #expect(found.tensors >= 3)
        #expect(found.golombRuns > 0 && found.huffmanRuns > 0, "both run modes must occur: \(found)")
        let clusteredRuns = try #require(found.runs["clustered.weight"])
        #expect(clusteredRuns.golomb > 0 && clusteredRuns.huffman > 0, "clustered tensor runs: \(clusteredRuns)")
    }

    @Test func gapCoderStreamsOfEveryShapeDecodeTheSame() throws {
        var g = GapSpecGenerator(seed: 11)
        var cases: [(name: String, code: TernaryCode)] = []
        for count in [0, 1, 7, 8, 9, 255, 256, 257, 511, 1000, 4099, 70_001] {
            for p in [0.0, 0.001, 0.05, 0.3, 0.5, 0.93, 1.0] {
                cases.append(("iid-\(count)-\(p)", g.code(count: count) { _ in p }))
            }
            cases.append(("blocks-\(count)", g.code(count: count) { i in [0.6, 0.0, 0.01, 0.97, 0.2][(i / 256) % 5] }))
        }
        let results = try decodeStreams(cases.map { ($0.name, GapCoder.encode($0.code), $0.code.count, $0.code.nonzeroCount) })
        let digests = try GapSpecReader.sha256(cases.flatMap { [$0.code.mask, $0.code.signs] })
        var modes = (golomb: 0, huffman: 0)
        for (i, (name, code)) in cases.enumerated() {
            let r = try #require(results[name] as? [String: Any], "\(name)")
            #expect(r["error"] == nil, "\(name): \(r["error"] ?? "")")
            #expect(r["nonzero"] as? Int == code.nonzeroCount, "\(name)")
            #expect(r["mask_sha256"] as? String == digests[2 * i], "\(name): mask")
            #expect(r["signs_sha256"] as? String == digests[2 * i + 1], "\(name): signs")
            let runs = r["runs"] as? [String: Int] ?? [:]
            modes.golomb += runs["golomb"] ?? 0
            modes.huffman += runs["huffman"] ?? 0
        }
        #expect(modes.golomb > 0 && modes.huffman > 0)
    }

    /// Truncations, every single-bit flip, trailing bytes, other headers and counts: the two readers must
    /// refuse the same streams and agree on every stream they accept.
    @Test func damagedStreamsGetTheSameVerdictFromBothReaders() throws {
        var g = GapSpecGenerator(seed: 5)
        let bases = [
            g.code(count: 2003) { i in [0.5, 0.02, 0.0, 0.4][(i / 512) % 4] },
            g.code(count: 700) { i in i < 256 ? 0.01 : 0.7 },
            g.code(count: 13) { _ in 0.5 },
            g.code(count: 600) { _ in 0.08 },
        ]
        var cases: [(name: String, stream: [UInt8], count: Int, nonzero: Int)] = []
        for (b, code) in bases.enumerated() {
            let good = GapCoder.encode(code)
            let (d, n) = (code.count, code.nonzeroCount)
            cases.append(("\(b)-good", good, d, n))
            for length in 0..<good.count { cases.append(("\(b)-cut\(length)", Array(good[0..<length]), d, n)) }
            for bit in 0..<(good.count * 8) {
                var bad = good
                bad[bit / 8] ^= 1 << UInt8(bit % 8)
                cases.append(("\(b)-flip\(bit)", bad, d, n))
            }
            for extra: UInt8 in [0, 1, 0x80] { cases.append(("\(b)-extra\(extra)", good + [extra], d, n)) }
            for header: UInt8 in [0x00, 0x11, 0x12, 0x1F, 0x20, 0xF0] {
                var bad = good
                bad[0] = header
                cases.append(("\(b)-header\(header)", bad, d, n))
            }
            for (dd, dn) in [(0, -1), (0, 1), (-1, 0), (1, 0), (-8, 0), (8, 0), (256, 0), (-256, 0)] where d + dd >= 0 && n + dn >= 0 {
                cases.append(("\(b)-counts\(dd),\(dn)", good, d + dd, n + dn))
            }
        }
        let results = try decodeStreams(cases)
        let decoded = cases.map { c in c.stream.withUnsafeBytes { try? GapCoder.decode($0, count: c.count, nonzero: c.nonzero) } }
        let digests = try GapSpecReader.sha256(decoded.flatMap { [$0?.mask ?? [], $0?.signs ?? []] })
        var accepted = 0
        for (i, c) in cases.enumerated() {
            let r = try #require(results[c.name] as? [String: Any], "\(c.name)")
            let swift = decoded[i]
            #expect((swift == nil) == (r["error"] != nil), "\(c.name): compeft \(swift == nil ? "refuses" : "accepts"), decode_gap.py \(r["error"] ?? "accepts")")
            if swift != nil, r["error"] == nil {
                accepted += 1
                #expect(r["mask_sha256"] as? String == digests[2 * i], "\(c.name): mask")
                #expect(r["signs_sha256"] as? String == digests[2 * i + 1], "\(c.name): signs")
            }
        }
        #expect(accepted > bases.count, "some damaged streams should still decode (flipped sign bits)")
    }

    /// Streams written here from the spec alone, with what compeft's own writer never chooses: blocks of
    /// 2^9 … 2^23, Golomb m = 1 and the largest m, j = 4 and 60, neighbouring runs with one parameter.
    @Test func handWrittenStreamsDecodeAsSpecified() throws {
        var g = GapSpecGenerator(seed: 3)
        let code = g.code(count: 5003) { i in [0.02, 0.5, 0.9, 0.07, 0.0001, 0.3][min(5, i / 800)] }
        typealias Run = (blocks: Int, huffman: Bool, parameter: Int)
        let plans: [(name: String, blockBits: Int, runs: [Run])] = [
            ("b8", 8, [(3, false, 0), (2, true, 4), (1, true, 60), (4, false, 399), (2, false, 31), (2, false, 32), (2, false, 32),
                       (3, true, 16), (1, true, 16)]),
            ("b9", 9, [(1, true, 40), (1, false, 100), (2, true, 5), (3, false, 7), (3, true, 20)]),
            ("b12", 12, [(1, false, 6), (1, true, 17)]),
            ("b23", 23, [(1, true, 16)]),
        ]
        var streams: [(name: String, stream: [UInt8], count: Int, nonzero: Int)] = []
        for plan in plans {
            var w = SpecWriter()
            var last = [6, 16]
            var block = 0
            for run in plan.runs {
                w.gamma(run.blocks)
                w.field(run.huffman ? 1 : 0, 1)
                let mode = run.huffman ? 1 : 0
                let delta = run.parameter - last[mode]
                w.gamma((delta >= 0 ? 2 * delta : -2 * delta - 1) + 1)
                last[mode] = run.parameter
                let start = block << plan.blockBits
                let end = min(code.count, (block + run.blocks) << plan.blockBits)
                if run.huffman {
                    let huffman = ByteHuffmanCode.code(run.parameter)
                    for i in (start / 8)..<((end + 7) / 8) {
                        let s = Int(code.mask[i])
                        w.field(Int(huffman.words[s]), Int(huffman.lengths[s]))  // first stream bit in bit 0
                    }
                } else {
                    let m = GolombParameter(index: run.parameter).modulus
                    var next = start
                    for i in start..<end where code.mask[i / 8] >> UInt8(i % 8) & 1 == 1 {
                        w.golomb(i - next, m: m)
                        next = i + 1
                    }
                    w.golomb(end - next, m: m)
                }
                block += run.blocks
            }
            #expect(block << plan.blockBits >= code.count && (block - 1) << plan.blockBits < code.count, "plan \(plan.name) covers the blocks")
            let stream = [UInt8(0x10 | (plan.blockBits - 8))] + code.signs + w.bytes()
            streams.append((plan.name, stream, code.count, code.nonzeroCount))
            let swift = try stream.withUnsafeBytes { try GapCoder.decode($0, count: code.count, nonzero: code.nonzeroCount) }
            #expect(swift.mask == code.mask && swift.signs == code.signs, "compeft decodes \(plan.name)")
        }
        let results = try decodeStreams(streams)
        let digests = try GapSpecReader.sha256([code.mask, code.signs])
        for s in streams {
            let r = try #require(results[s.name] as? [String: Any])
            #expect(r["error"] == nil, "\(s.name): \(r["error"] ?? "")")
            #expect(r["mask_sha256"] as? String == digests[0], "\(s.name): mask")
            #expect(r["signs_sha256"] as? String == digests[1], "\(s.name): signs")
        }
    }

    // MARK: - Helpers

    struct Found: CustomStringConvertible {
        var tensors = 0
        var golombRuns = 0
        var huffmanRuns = 0
        var runs: [String: (golomb: Int, huffman: Int)] = [:]
        var description: String { "\(tensors) tensors, \(golombRuns) Golomb runs, \(huffmanRuns) Huffman runs" }
    }

    /// Compresses `input`, decodes every encoding-3 tensor with both readers and compares them.
    func compressAndCompare(_ input: TaskVectorInput, density: Double, name: String) throws -> Found {
        let dir = scratchDirectory("gapspec-\(name)")
        let path = dir + "/c.cpeft"
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(density)), to: AtomicFileWriter(path: path, overwrite: true))
        let reader = try ContainerReader(path: path)
        let python = try GapSpecReader.run([path])
        let gapTensors = reader.index.tensors.filter { $0.encoding == PayloadEncoding.ternaryGap.rawValue }
        #expect(Set(python.keys) == Set(gapTensors.map(\.name)))
        var found = Found()
        var codes: [TernaryCode] = []
        for t in gapTensors {
            guard case .code(let code) = try reader.payload(t) else {
                Issue.record("\(t.name): not a code")
                return found
            }
            codes.append(code)
        }
        let digests = try GapSpecReader.sha256(codes.flatMap { [$0.mask, $0.signs] })
        for (i, t) in gapTensors.enumerated() {
            let r = try #require(python[t.name] as? [String: Any], "\(t.name)")
            #expect(t.rawLength == t.length)
            #expect(r["nonzero"] as? Int == t.nonzero, "\(t.name)")
            #expect(r["mask_sha256"] as? String == digests[2 * i], "\(t.name): mask")
            #expect(r["signs_sha256"] as? String == digests[2 * i + 1], "\(t.name): signs")
            let runs = r["runs"] as? [String: Int] ?? [:]
            found.tensors += 1
            found.golombRuns += runs["golomb"] ?? 0
            found.huffmanRuns += runs["huffman"] ?? 0
            found.runs[t.name] = (runs["golomb"] ?? 0, runs["huffman"] ?? 0)
        }
        return found
    }

    /// Runs decode_gap.py --streams over bare streams.
    func decodeStreams(_ streams: [(name: String, stream: [UInt8], count: Int, nonzero: Int)]) throws -> [String: Any] {
        let dir = scratchDirectory("gapspec-streams")
        var manifest: [[String: Any]] = []
        for (i, s) in streams.enumerated() {
            let path = dir + "/\(i).gap"
            try Data(s.stream).write(to: URL(fileURLWithPath: path))
            manifest.append(["name": s.name, "path": path, "count": s.count, "nonzero": s.nonzero])
        }
        let manifestPath = dir + "/manifest.json"
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: manifestPath))
        return try GapSpecReader.run(["--streams", manifestPath])
    }
}

/// Fixtures/decode_gap.py, run with its standard output kept apart from its messages.
enum GapSpecReader {
    static let script = repositoryRoot + "/Fixtures/decode_gap.py"

    static let isAvailable = Python.run([
        "-c", "import importlib.util, shutil, sys; sys.exit(0 if importlib.util.find_spec('zstandard') or shutil.which('zstd') else 1)",
    ]).status == 0

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The SHA-256 of each blob as lowercase hex, computed by Python's `hashlib` (the digest decode_gap.py
    /// prints), in one run for all of them.
    static func sha256(_ blobs: [[UInt8]]) throws -> [String] {
        let path = scratchDirectory("gapspec-digests") + "/blobs.bin"
        var file: [UInt8] = []
        for blob in blobs {
            withUnsafeBytes(of: UInt64(blob.count).littleEndian) { file += $0 }
            file += blob
        }
        try Data(file).write(to: URL(fileURLWithPath: path))
        let script = """
            import hashlib, json, struct, sys
            data, i, out = open(sys.argv[1], 'rb').read(), 0, []
            while i < len(data):
                (n,) = struct.unpack_from('<Q', data, i)
                out.append(hashlib.sha256(data[i + 8:i + 8 + n]).hexdigest())
                i += 8 + n
            json.dump(out, sys.stdout)
            """
        let digests = try JSONDecoder().decode([String].self, from: Python.output(script, arguments: [path]))
        guard digests.count == blobs.count else { throw Failure(description: "\(digests.count) digests for \(blobs.count) blobs") }
        return digests
    }

    static func run(_ arguments: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script] + arguments
        let out = Pipe()
        let errorPath = scratchDirectory("gapspec-stderr") + "/stderr.txt"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        defer { try? err.close() }
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let message = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            throw Failure(description: "decode_gap.py \(arguments) exited \(p.terminationStatus): \(message)")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "decode_gap.py \(arguments) printed no JSON object")
        }
        return object
    }
}

/// The bit-level fields of docs/FORMAT.md "Encoding 3", for writing streams by hand.
struct SpecWriter {
    var bits: [Bool] = []

    /// A w-bit field, least significant bit first.
    mutating func field(_ value: Int, _ width: Int) {
        for k in 0..<width { bits.append(value >> k & 1 == 1) }
    }

    mutating func unary(_ q: Int) {
        bits += repeatElement(true, count: q)
        bits.append(false)
    }

    /// Elias gamma: ⌊log₂ v⌋ zeros, then v's digits most significant first.
    mutating func gamma(_ v: Int) {
        let n = Int.bitWidth - v.leadingZeroBitCount - 1
        bits += repeatElement(false, count: n)
        for k in stride(from: n, through: 0, by: -1) { bits.append(v >> k & 1 == 1) }
    }

    /// A Golomb code word: unary quotient, truncated-binary remainder.
    mutating func golomb(_ gap: Int, m: Int) {
        unary(gap / m)
        guard m > 1 else { return }
        let r = gap % m
        let b = Int.bitWidth - (m - 1).leadingZeroBitCount
        let t = (1 << b) - m
        if r < t {
            field(r, b - 1)
        } else {
            field((r + t) / 2, b - 1)
            field((r + t) % 2, 1)
        }
    }

    /// The stream, zero-padded to whole bytes.
    func bytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
        for (i, bit) in bits.enumerated() where bit { out[i / 8] |= 1 << UInt8(i % 8) }
        return out
    }
}

/// SplitMix64, and masks and tensors drawn from it with a planned density per position.
struct GapSpecGenerator {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { rng.next() }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    struct Plan {
        var shape: [Int]
        var density: (Int) -> Double
        var count: Int { shape.reduce(1, *) }
    }

    /// Binary32 values: where position i draws under density(i), a large value (0.5 … 1, either sign),
    /// elsewhere a small one (0 … 0.01). Returns the bytes and the number of large values.
    mutating func values(_ plan: Plan) -> ([UInt8], Int) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(plan.count * 4)
        var big = 0
        for i in 0..<plan.count {
            var v: Float
            if unit() < plan.density(i) {
                v = Float(0.5 + 0.5 * unit())
                big += 1
            } else {
                v = Float(0.01 * unit())
            }
            if next() & 1 == 1 { v = -v }
            withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
        }
        return (bytes, big)
    }

    /// A ternary code whose position i is kept with probability density(i), with random signs.
    mutating func code(count: Int, density: (Int) -> Double) -> TernaryCode {
        var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
        var signBits: [Bool] = []
        for i in 0..<count where unit() < density(i) {
            mask[i / 8] |= 1 << UInt8(i % 8)
            signBits.append(next() & 1 == 1)
        }
        var signs = [UInt8](repeating: 0, count: (signBits.count + 7) / 8)
        for (k, negative) in signBits.enumerated() where negative { signs[k / 8] |= 1 << UInt8(k % 8) }
        return TernaryCode(count: count, keptCount: signBits.count, nonzeroCount: signBits.count, mask: mask, signs: signs)
    }
}
