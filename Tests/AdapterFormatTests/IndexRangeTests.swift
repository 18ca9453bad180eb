@testable import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// An index number that does not fit its field is reported naming the field, not as "The given data
/// was not valid JSON" (issue 16 §6). The index is edited as text and sealed again (zstd frame,
/// XXH64, trailer), so the reader gets past every checksum to the number.
@Suite struct IndexRangeTests {
    /// A format 1.0 container (JSON index; format 1.1 indexes are binary and bounded by their codec), pinned in
    /// Fixtures: the (IA)³ fixture; its first "offset" is that of its verbatim adapter_config.json (files[0]).
    static func container() throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("containers/ia3-gpt2-f16-v1.0.cpeft"))))
    }

    /// `bytes` (a format 1.0 container) with its index replaced by `json`, sealed as docs/FORMAT.md says.
    static func resealed(_ bytes: [UInt8], index json: [UInt8]) throws -> [UInt8] {
        let t = bytes.count - ContainerLayout.Legacy.trailerSize
        let indexOffset = Int(bytes.withUnsafeBytes { $0.readLE(UInt64.self, at: t)! })
        let stored = try json.withUnsafeBytes { try Zstd.compress($0, level: 3) }
        return Array(bytes[0..<indexOffset]) + stored
            + ContainerLayout.Legacy.trailer(indexOffset: UInt64(indexOffset), indexLength: UInt64(stored.count),
                                             indexRawLength: UInt64(json.count), indexHash: XXH64.hash(stored),
                                             preamble: Array(bytes[0..<ContainerLayout.Legacy.preambleSize]))
    }

    /// The container's index as JSON text (what the writer encodes).
    static func indexText(of bytes: [UInt8]) throws -> String {
        let reader = try ContainerReader(name: "c", contents: bytes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(reader.index), as: UTF8.self)
    }

    @Test(arguments: [
        ("offset", "18446744073709551616", "field 'files[0].offset' is 18446744073709551616, out of range: too large for 64 bits"),
        ("offset", "9223372036854775808", "field 'files[0].offset' is 9223372036854775808, out of range (the largest accepted is 9223372036854775807)"),
        ("count", "1.5", "field 'tensors[0].count' is 1.5, which this field does not accept (it needs an integer)"),
        ("scaleBits", "18446744073709551616", "field 'tensors[0].scaleBits' is 18446744073709551616, out of range: too large for 64 bits"),
    ])
    func indexNumberThatDoesNotFitIsNamed(field: String, literal: String, message: String) throws {
        let good = try Self.container()
        var text = try Self.indexText(of: good)
        let range = try #require(text.range(of: #""\#(field)":-?[0-9.]+"#, options: .regularExpression))
        text.replaceSubrange(range, with: #""\#(field)":\#(literal)"#)
        let bad = try Self.resealed(good, index: Array(text.utf8))
        do {
            _ = try ContainerReader(name: "bad.cpeft", contents: bad)
            Issue.record("a container whose index says \(field) = \(literal) was opened")
        } catch let error as FormatError {
            #expect(error.code == .malformed)
            #expect(error.description.contains("bad.cpeft: index is not valid: " + message), "\(error)")
        }
    }

    @Test func resealingAnUnchangedIndexGivesAContainerThatOpens() throws {
        let good = try Self.container()
        let same = try Self.resealed(good, index: Array(try Self.indexText(of: good).utf8))
        let reader = try ContainerReader(name: "same", contents: same)
        for t in reader.index.tensors { try reader.verify(t) }
    }
}
