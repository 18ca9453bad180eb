@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// The format 1.1 index body: every field comes back as written, and no body, however damaged, traps,
/// hangs or allocates more than it holds.
@Suite struct BinaryIndexTests {
    /// A random index that satisfies what the body stores and derives: offsets back to back from the
    /// preamble, raw lengths and α derived, the group's counts summed or stated.
    static func randomIndex(_ g: inout SplitMix64) -> (ContainerIndex, [String: [UInt8]], payloadEnd: Int) {
        func pick<T>(_ options: [T]) -> T { options[Int(g.next() % UInt64(options.count))] }
        func chance(_ n: UInt64) -> Bool { g.next() % n == 0 }
        func finite() -> Float { Float(Int(g.next() % 2001) - 1000) / 64 }
        func hex8() -> String { String(XXH64.hex(g.next()).suffix(8)) }
        let density = pick([0.5, 1, 10, 29, 100, Double(g.next() % 100) + 0.25])
        var compression = ContainerIndex.Compression(
            method: pick(["compeft", "stc", "prune", "future"]), scope: pick(["global", "tensor"]), density: density,
            alphaRequested: chance(2) ? "auto" : String(Double(g.next() % 1000) / 64 + 0.5))
        let hasGroup = chance(2)
        let summed = hasGroup && chance(2)
        // A scale rule of its own (field 6): the group's scale is written as 0 and shown as none.
        compression.scaleScope = chance(3) ? pick(["tensor", "module", "future"]) : nil
        compression.loraGauge = chance(3) ? pick(["svd", "svd-dct"]) : nil
        compression.loraGaugeRequested = compression.loraGauge != nil && chance(2) ? "auto" : nil
        let groupScale = compression.scaleScope == nil ? abs(finite()) : 0

        let outputFiles = ["model-1.safetensors", "model-2.safetensors", "x"].prefix(1 + Int(g.next() % 3))
        var metadata: [String: [String: String]] = [:]
        for f in outputFiles where chance(2) { metadata[f] = ["format": "pt", "k\(g.next() % 9)": "vé"] }

        var offset = ContainerLayout.preambleSize
        var files: [ContainerIndex.File] = []
        var inline: [String: [UInt8]] = [:]
        for i in 0..<Int(g.next() % 4) {
            let contents = (0..<Int(g.next() % 40)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            if chance(2) {
                inline["f\(i).json"] = contents
                files.append(.init(name: "f\(i).json", offset: 0, length: 0, rawLength: contents.count, xxh64: nil, inline: true))
            } else {
                let length = Int(g.next() % 30)
                files.append(.init(name: "f\(i).json", offset: offset, length: length, rawLength: Int(g.next() % 500), xxh64: hex8()))
                offset += length
            }
        }

        let stems = ["base_model.model.layers.0.q.lora_A.weight", "base_model.model.layers.0.q.lora_B.weight",
                     "base_model.model.layers.1.v.ia3_l", "classifier", "é", "z.bias"]
        let names = Set((0..<Int(g.next() % 12)).map { _ in pick(stems) + (chance(3) ? "\(g.next() % 50)" : "") })
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var tensors: [ContainerIndex.Tensor] = []
        for name in names {
            let encoding = pick([0, 1, 2, 3, 3, 17])
            let dtype: DType = encoding == 0 ? pick(DType.allCases) : pick([.f32, .f16, .bf16, .f64])
            let shape = (0..<Int(g.next() % 4)).map { _ in Int(g.next() % 9) }
            let count = shape.reduce(1, *)
            let nonzero = encoding == 0 ? 0 : Int(g.next() % UInt64(count + 1))
            let kept = encoding == 0 ? count : nonzero + (chance(4) ? Int(g.next() % UInt64(count - nonzero + 1)) : 0)
            let ternary = encoding == 1 || encoding == 3
            var scaleBits: UInt32 = ternary && hasGroup && !chance(4) ? groupScale.bitPattern : (ternary || chance(5) ? finite().bitPattern : 0)
            if !ternary && !chance(5) { scaleBits = 0 }
            let sigma: Double? = chance(3) ? Double(g.next() % 100) / 7 : nil
            let length = Int(g.next() % 60)
            let raw = PayloadEncoding(rawValue: encoding).map { e in
                e == .ternaryGap ? length : PayloadEncoding.rawLength(e, count: count, nonzero: nonzero, dtype: dtype)!
            } ?? 0
            tensors.append(ContainerIndex.Tensor(
                name: name, file: pick(Array(outputFiles)), dtype: dtype, shape: shape, role: chance(3) ? .exact : .residual,
                initRule: pick(InitRule.allCases), note: chance(3) ? "stored exactly: \(g.next() % 5)" : nil, encoding: encoding,
                count: count, kept: kept, nonzero: nonzero, scaleBits: scaleBits, scale: Float(bitPattern: scaleBits),
                sigma: sigma, alpha: sigma.map { $0 > 0 ? Double(Float(bitPattern: scaleBits)) / $0 : 0 },
                offset: offset, length: length, rawLength: raw, xxh64: hex8()))
            offset += length
        }
        if hasGroup {
            let residual = tensors.filter { $0.role == .residual }
            let sums = (residual.reduce(0) { $0 + $1.count }, residual.reduce(0) { $0 + $1.kept }, residual.reduce(0) { $0 + $1.nonzero })
            let total = summed ? sums.0 : sums.0 + Int(g.next() % 1000)
            compression.total = total
            compression.keptCount = summed ? sums.1 : total / 3
            compression.keptNonzero = summed ? sums.2 : total / 4
            compression.keepTarget = Density.percent(density).keepCount(of: total)
            compression.rank = total - compression.keepTarget!
            compression.threshold = abs(finite())
            compression.sigma = chance(4) ? 0 : Double(g.next() % 1000) / 999
            if compression.scaleScope == nil {
                compression.scale = groupScale
                compression.alpha = compression.sigma! > 0 ? Double(groupScale) / compression.sigma! : 0
            }
        }
        let defaultSources = files.map(\.name) + Set(tensors.map(\.file)).union(metadata.keys)
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let index = ContainerIndex(
            tool: pick(["compeft 0.1.0", "", "another writer"]), inputKind: pick(["peft-adapter", "residual", "next"]),
            peftType: chance(2) ? "LORA" : nil, sources: chance(2) ? defaultSources : ["a.bin", "b"], compression: compression,
            fileMetadata: metadata, files: files, tensors: tensors)
        return (index, inline, offset)
    }

    @Test func everyFieldComesBackAsWritten() throws {
        var g = SplitMix64(seed: 0x1d3)
        for round in 0..<400 {
            let (index, inline, payloadEnd) = Self.randomIndex(&g)
            let body = index.binaryBody(inlineFiles: inline)
            let decoded = try ContainerIndex.decodeBinary(body, payloadArea: ContainerLayout.preambleSize..<payloadEnd)
            #expect(decoded.index == index, "round \(round) (seed 0x1d3)")
            #expect(decoded.inlineFiles == inline, "round \(round)")
            #expect(decoded.refusedTensors.isEmpty && decoded.refusedFiles.isEmpty)
        }
    }

    /// A container written to memory, its index body, and a function that reseals an edited body.
    static func realBody() throws -> (container: [UInt8], body: [UInt8], reseal: ([UInt8]) -> [UInt8]) {
        let input = try TaskVectorInput.load(path: Fixtures.path("lora-bert-seqcls"))
        let sink = MemoryByteSink()
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: sink, zstdLevel: 3)
        let bytes = sink.bytes
        let t = bytes.count - ContainerLayout.trailerSize
        let length = Int(bytes.withUnsafeBytes { $0.readLE(UInt32.self, at: t)! })
        let body = try IndexCodec.load(Array(bytes[(t - length)..<t]))
        let head = Array(bytes[0..<(t - length)])
        return (bytes, body, { edited in
            let index = [IndexCodec.none.rawValue] + edited
            return head + index + ContainerLayout.Trailer.bytes(preamble: Array(head[0..<12]), index: index)
        })
    }

    @Test func damagedIndexBodiesAreRefusedWithoutCrashing() throws {
        let (_, body, reseal) = try Self.realBody()
        #expect(try ContainerReader(name: "x.cpeft", contents: reseal(body)).index.tensors.count == 10)
        var g = SplitMix64(seed: 0xbad1)
        var opened = 0, refused = 0
        func attempt(_ edited: [UInt8], _ what: String) {
            do {
                let r = try ContainerReader(name: "x.cpeft", contents: reseal(edited))
                for t in r.index.tensors { _ = try? r.payload(t) }
                opened += 1
            } catch let e as FormatError {
                #expect(e.code == .malformed || e.code == .unsupported, "\(what): \(e)")
                refused += 1
            } catch {
                Issue.record("\(what): \(error) is not a FormatError")
            }
        }
        for length in 0..<body.count { attempt(Array(body[0..<length]), "cut at \(length)") }
        for round in 0..<2000 {
            var edited = body
            for _ in 0..<(1 + Int(g.next() % 4)) {
                let i = Int(g.next() % UInt64(edited.count))
                switch g.next() % 3 {
                case 0: edited[i] = UInt8(truncatingIfNeeded: g.next())
                case 1: edited[i] ^= 1 << UInt8(g.next() % 8)
                default: edited.insert(UInt8(truncatingIfNeeded: g.next()), at: i)
                }
            }
            attempt(edited, "mutation \(round) (seed 0xbad1)")
        }
        // Every cut is refused (the body must end exactly after its last tensor); most mutations are too.
        #expect(refused >= body.count + 1000, "opened \(opened), refused \(refused)")
    }

    @Test func lyingCountsAndLengthsAreRefused() throws {
        let body = indexBody
        let huge = 1 << 62
        let cases: [(String, [UInt8])] = [
            ("output files", body { $0.uvarint(huge) }),
            ("metadata", body { $0.uvarint(1); $0.string("m"); $0.uvarint(huge) }),
            ("verbatim files", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(huge) }),
            ("inline file", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(1); $0.string("f"); $0.u8(0); $0.uvarint(huge) }),
            ("tensors", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(huge) }),
            ("string", body { $0.uvarint(1); $0.uvarint(huge) }),
            ("rank", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(1); $0.uvarint(0); $0.string("t")
                $0.u8(0); $0.u8(11); $0.uvarint(huge) }),
            ("shape product", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(1); $0.uvarint(0); $0.string("t")
                $0.u8(0); $0.u8(11); $0.uvarint(3); $0.uvarint(1 << 40); $0.uvarint(1 << 40); $0.uvarint(1 << 40) }),
            ("payload length", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(1); $0.uvarint(0); $0.string("t")
                $0.u8(0); $0.u8(11); $0.uvarint(1); $0.uvarint(4); $0.uvarint(0); $0.uvarint(huge); $0.u32(0) }),
            ("tensors over the limit", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0)
                $0.uvarint(IndexFields.Limit.tensors + 1); $0.raw([UInt8](repeating: 0, count: IndexFields.Limit.tensors + 1)) }),
            ("rank over the limit", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(1); $0.uvarint(0)
                $0.string("t"); $0.u8(0); $0.u8(11); $0.uvarint(65); $0.raw([UInt8](repeating: 1, count: 65)) }),
            ("name over the limit", body { $0.uvarint(1); $0.string("m"); $0.uvarint(0); $0.uvarint(0); $0.uvarint(1); $0.uvarint(0)
                $0.string(String(repeating: "n", count: IndexFields.Limit.nameLength + 1)) }),
            ("overlong uvarint", body { $0.raw([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]) }),
            ("redundant uvarint", body { $0.raw([0x80, 0x00]) }),
        ]
        for (what, bytes) in cases {
            #expect(throws: BinaryIndexError.self, "\(what)") {
                try ContainerIndex.decodeBinary(bytes, payloadArea: ContainerLayout.preambleSize..<100)
            }
        }
    }
}
