@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// Containers written by earlier versions must keep decoding, and readers must skip what they do not know.
@Suite struct CompatibilityTests {
    /// `Fixtures/files/containers/*-v1.0.cpeft` were written by compeft 0.1.0 in format 1.0 (JSON index,
    /// encoding 1) and `*-v1.1.cpeft` in format 1.1 (binary index, encoding 3); they are never
    /// regenerated: they pin what readers must keep reading.
    @Test(arguments: [("containers/lora-bert-seqcls-v1.0.cpeft", "lora-bert-seqcls", 10.0, UInt16(0)),
                      ("containers/ia3-gpt2-f16-v1.0.cpeft", "ia3-gpt2-f16", 20.0, UInt16(0)),
                      ("containers/lora-bert-seqcls-v1.1.cpeft", "lora-bert-seqcls", 10.0, UInt16(1)),
                      ("containers/ia3-gpt2-f16-v1.1.cpeft", "ia3-gpt2-f16", 20.0, UInt16(1))])
    func pinnedContainersStillDecodeToTheSameValues(container: String, fixture: String, density: Double, minor: UInt16) throws {
        let old = try ContainerReader(path: Fixtures.path(container))
        #expect(old.majorVersion == 1 && old.minorVersion == minor)
        let dir = scratchDirectory("compat")
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture))
        _ = try AdapterCompressor.compress(input, options: .paper(density: .percent(density)), to: AtomicFileWriter(path: dir + "/new.cpeft"))
        let new = try ContainerReader(path: dir + "/new.cpeft")
        #expect(old.index.tensors.map(\.name) == new.index.tensors.map(\.name))
        for t in old.index.tensors where t.dtype.isFloatingPoint {
            var a = [Float](repeating: 0, count: t.count)
            var b = [Float](repeating: 0, count: t.count)
            try a.withUnsafeMutableBufferPointer { try old.decodeValues(t, base: nil, into: $0) }
            try b.withUnsafeMutableBufferPointer { try new.decodeValues(new.tensor(named: t.name)!, base: nil, into: $0) }
            #expect(a == b, "\(t.name)")
        }
    }

    /// Rewrites a container's index JSON (re-compressing it and fixing the trailer's checksums).
    static func rewritingIndex(_ bytes: [UInt8], _ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
        let reader = try ContainerReader(name: "x.cpeft", contents: bytes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var object = try JSONSerialization.jsonObject(with: encoder.encode(reader.index)) as! [String: Any]
        edit(&object)
        let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let stored = try json.withUnsafeBytes { try Zstd.compress($0, level: 3) }
        let t = bytes.count - ContainerLayout.Legacy.trailerSize
        let indexOffset = Int(bytes.withUnsafeBytes { $0.readLE(UInt64.self, at: t)! })
        var out = Array(bytes[0..<indexOffset]) + stored
        out += ContainerLayout.Legacy.trailer(indexOffset: UInt64(indexOffset), indexLength: UInt64(stored.count),
                                              indexRawLength: UInt64(json.count), indexHash: XXH64.hash(stored),
                                              preamble: Array(bytes[0..<16]))
        return out
    }

    @Test func unknownOptionalIndexFieldsAreSkipped() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("containers/lora-bert-seqcls-v1.0.cpeft"))))
        let edited = try Self.rewritingIndex(bytes) { index in
            index["futureField"] = ["anything": [1, 2, 3]]
            var tensors = index["tensors"] as! [[String: Any]]
            for i in tensors.indices { tensors[i]["quantizerHint"] = "ignored" }
            index["tensors"] = tensors
        }
        let reader = try ContainerReader(name: "edited.cpeft", contents: edited)
        for t in reader.index.tensors { try reader.verify(t) }
    }

    @Test func unknownPayloadEncodingIsRefusedByTensorNotByFile() throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("containers/lora-bert-seqcls-v1.0.cpeft"))))
        let edited = try Self.rewritingIndex(bytes) { index in
            var tensors = index["tensors"] as! [[String: Any]]
            tensors[0]["encoding"] = 99
            index["tensors"] = tensors
        }
        let reader = try ContainerReader(name: "future.cpeft", contents: edited)
        #expect { try reader.verify(reader.index.tensors[0]) } throws: { error in
            let e = error as? FormatError
            return e?.code == .unsupported && e!.message.contains("encoding 99")
        }
        try reader.verify(reader.index.tensors[1])
    }
}
