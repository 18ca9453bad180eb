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
        let indexStart = good.count - ContainerLayout.trailerSize - (reader.index.tensors.isEmpty ? 0 : 1)
        for position in [indexStart, good.count - 48, good.count - 40, good.count - 30, good.count - 12, good.count - 1, 3, 12] {
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
            return e?.code == .unsupported && e!.message.contains("version 2.0")
        }
    }

    @Test func notAContainerIsRefused() throws {
        #expect(throws: FormatError.self) { try open(Array("hello, this is not a compeft container at all, no".utf8) + [UInt8](repeating: 0, count: 64)) }
        let safetensors = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("residual.safetensors"))))
        #expect(throws: FormatError.self) { try open(safetensors) }
    }

    @Test func randomByteFlipsNeverCrash() throws {
        let good = try container()
        var g = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bad = good
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                let i = Int.random(in: 0..<bad.count, using: &g)
                bad[i] = UInt8.random(in: 0...255, using: &g)
            }
            if let r = try? open(bad) {
                for t in r.index.tensors { _ = try? r.payload(t) }
            }
        }
    }
}
