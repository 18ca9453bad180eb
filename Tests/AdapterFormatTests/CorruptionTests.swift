import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

@Suite struct CorruptionTests {
    func container() throws -> [UInt8] {
        let dir = scratchDirectory("corrupt-src")
        let input = try TaskVectorInput.load(path: Fixtures.path("lora-bert-seqcls"))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        return Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/c.cpeft")))
    }

    func open(_ bytes: [UInt8]) throws -> ContainerReader {
        try ContainerReader(name: "bad.cpeft", contents: bytes)
    }

    @Test func flippedPayloadByteIsRefusedNamingTheTensor() throws {
        let good = try container()
        let reader = try open(good)
        for t in reader.index.tensors {
            for position in [t.offset, t.offset + t.length / 2, t.offset + t.length - 1] {
                var bad = good
                bad[position] ^= 0x20
                let r = try open(bad)  // the index is intact, so the file opens
                #expect { try r.verify(r.tensor(named: t.name)!) } throws: { error in
                    let e = error as? FormatError
                    return e?.code == .checksum && e?.tensor == t.name && e?.file == "bad.cpeft"
                }
                // Other tensors still decode: one tensor's damage does not spread.
                for other in r.index.tensors where other.name != t.name { try r.verify(other) }
            }
        }
    }

    @Test func flippedIndexOrTrailerByteIsRefused() throws {
        let good = try container()
        let reader = try open(good)
        let payloadEnd = reader.index.tensors.map { $0.offset + $0.length }.max()!
        let trailer = good.count - ContainerLayout.trailerSize
        // The index's codec byte, first, middle and last bytes; every trailer field; magic and version.
        let index = [payloadEnd, payloadEnd + 1, (payloadEnd + trailer) / 2, trailer - 1]
        for position in index + [trailer, trailer + 3, trailer + 4, trailer + 7, trailer + 8, trailer + 15, trailer + 16,
                                 good.count - 1, 3, 11] {
            var bad = good
            bad[position] ^= 0x01
            #expect(throws: FormatError.self, "byte \(position)") { try open(bad) }
        }
    }

    @Test func everyTruncationIsRefusedWithoutCrashing() throws {
        let good = try container()
        for length in Set([0, 1, 8, 15, 16, 17, 63, 64] + Array(stride(from: 0, to: good.count, by: 97)) + [good.count - 1]) where length < good.count {
            #expect(throws: FormatError.self, "length \(length)") { try open(Array(good[0..<length])) }
        }
    }

    @Test func unknownMajorVersionIsRefusedByName() throws {
        var bad = try container()
        bad[8] = 2
        #expect { try open(bad) } throws: { error in
            let e = error as? FormatError
            return e?.code == .unsupported && e!.message.contains("version 2.1")
        }
    }

    @Test func notAContainerIsRefused() throws {
        #expect(throws: FormatError.self) { try open(Array("hello, this is not a compeft container at all, no".utf8) + [UInt8](repeating: 0, count: 64)) }
        let safetensors = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("residual.safetensors"))))
        #expect(throws: FormatError.self) { try open(safetensors) }
    }

    /// Random damage (1–4 bytes set to random values, 300 seeded rounds per seed): every container either
    /// opens and verifies, or is refused with a ``FormatError`` — the documented error — when it is
    /// opened or when a tensor is verified and decoded. Any other error fails the test; a crash kills it.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomByteFlipsAreRefusedWithFormatErrors(seed: UInt64) throws {
        let good = try container()
        var g = SplitMix64(seed: seed)
        var outcomes = (intact: 0, refusedAtOpen: 0, refusedAtDecode: 0)
        for round in 0..<300 {
            var bad = good
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                let i = Int.random(in: 0..<bad.count, using: &g)
                bad[i] = UInt8.random(in: 0...255, using: &g)
            }
            do {
                let r = try open(bad)
                do {
                    for t in r.index.tensors {
                        try r.verify(t)
                        var values = [Float](repeating: 0, count: t.count)
                        try values.withUnsafeMutableBufferPointer { try r.decodeValues(t, base: nil, into: $0) }
                    }
                    outcomes.intact += 1
                } catch is FormatError {
                    outcomes.refusedAtDecode += 1
                }
            } catch is FormatError {
                outcomes.refusedAtOpen += 1
            } catch {
                Issue.record("seed \(seed) round \(round): \(type(of: error)) is not the documented FormatError: \(error)")
            }
        }
        // Most damage lands in payloads (caught by their checksums) or the index (caught at open); a
        // value byte rewritten to itself leaves the container intact.
        #expect(outcomes.refusedAtOpen + outcomes.refusedAtDecode + outcomes.intact == 300, "seed \(seed)")
        #expect(outcomes.refusedAtOpen > 0 && outcomes.refusedAtDecode > 0, "seed \(seed): \(outcomes)")
    }
}
