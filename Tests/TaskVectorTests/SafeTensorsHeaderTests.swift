import CompeftTestSupport
import Foundation
import Testing

@testable import TaskVector

/// The safetensors header reader (``SafeTensorsHeader``) against Foundation's JSON parser, and
/// ``JSONText`` against `JSONSerialization`'s writer, on seeded random inputs.
@Suite struct SafeTensorsHeaderTests {
    /// Every entry and value the reader yields, in a form comparable with Foundation's tree.
    private func read(_ text: String) throws -> [String: Any] {
        var out: [String: Any] = [:]
        var header = SafeTensorsHeader(UnsafeRawBufferPointer(start: nil, count: 0))
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBytes { raw in
            header = SafeTensorsHeader(raw)
            try header.forEachEntry { key, value in out[key] = Self.plain(value) }
        }
        return out
    }

    private static func plain(_ v: SafeTensorsHeader.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .number(let text, let integer): return integer.map { NSNumber(value: $0) } ?? NSNumber(value: Double(text)!)
        case .bool(let b): return NSNumber(value: b)
        case .null: return NSNull()
        case .array(let items): return items.map(plain)
        case .object(let pairs): return Dictionary(pairs.map { ($0.key, plain($0.value)) }, uniquingKeysWith: { $1 })
        }
    }

    /// A value as text with sorted keys and every number as a Double (Foundation on Linux hands JSON
    /// booleans over as numbers 1 and 0, so a boolean is compared as one).
    private static func canonical(_ v: Any) -> String {
        switch v {
        case let s as String: return "s" + s.debugDescription
        case let n as NSNumber: return "n\(n.doubleValue)"
        case let b as Bool: return "n\(b ? 1.0 : 0.0)"
        case is NSNull: return "null"
        case let a as [Any]: return "[" + a.map(canonical).joined(separator: ",") + "]"
        case let o as [String: Any]: return "{" + o.keys.sorted().map { "\($0.debugDescription):" + canonical(o[$0]!) }.joined(separator: ",") + "}"
        default: return "?\(v)"
        }
    }

    /// A random JSON value of at most `depth` levels, written as text.
    private func randomJSON(_ rng: inout SplitMix64, depth: Int) -> String {
        let strings = ["", "a", "layers.0.w", "é", "\\\"", "\\\\", "\\/", "\\n\\t", "\\u00e9", "\\ud83d\\ude00", "𝛕", "x y"]
        switch rng.next() % (depth > 0 ? 8 : 5) {
        case 0: return "\"\(strings[Int(rng.next() % UInt64(strings.count))])\""
        case 1: return ["0", "-0", "1", "-17", "9223372036854775807", "-9223372036854775808"][Int(rng.next() % 6)]
        case 2: return ["0.5", "-1.25e3", "1E-7", "2e+2", "1.0"][Int(rng.next() % 5)]
        case 3: return ["true", "false"][Int(rng.next() % 2)]
        case 4: return "null"
        case 5, 6:
            let n = Int(rng.next() % 4)
            return "[" + (0..<n).map { _ in randomJSON(&rng, depth: depth - 1) }.joined(separator: [",", " , ", ",\n"][Int(rng.next() % 3)]) + "]"
        default:
            let n = Int(rng.next() % 4)
            return "{" + (0..<n).map { i in "\"k\(i)\" : " + randomJSON(&rng, depth: depth - 1) }.joined(separator: ",") + "}"
        }
    }

    @Test func readsWhatFoundationReads() throws {
        var rng = SplitMix64(seed: 16_05)
        for round in 0..<500 {
            let n = Int(rng.next() % 5)
            let text = "{" + (0..<n).map { i in "\"e\(i)\":" + randomJSON(&rng, depth: 3) }.joined(separator: ",") + "}  "
            let ours = try read(text)
            let theirs = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
            #expect(Self.canonical(ours) == Self.canonical(theirs), "round \(round): \(text)")
        }
    }

    @Test func refusesWhatIsNotJSON() {
        let bad = [
            "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":tru}",
            "{\"a\":\"\u{01}\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u12\"}", "{\"a\" 1}", "{a:1}",
            "{\"a\":1} x", "{\"a\":[1,2}", "{\"a\":NaN}", "{\"a\":+1}", "{\"a\":\"unterminated}",
            "{\"a\":" + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}",
        ]
        for text in bad {
            #expect(throws: SafeTensorsHeader.SyntaxError.self, "\(text)") { _ = try read(text) }
        }
        // Invalid UTF-8 in a name.
        var bytes = Array("{\"a\":1}".utf8)
        bytes[2] = 0xFF
        #expect(throws: SafeTensorsHeader.SyntaxError.self) {
            try bytes.withUnsafeBytes { raw in
                var h = SafeTensorsHeader(raw)
                try h.forEachEntry { _, _ in }
            }
        }
        // 63 levels inside the entry are accepted (64 with the top-level object).
        #expect(throws: Never.self) {
            _ = try read("{\"a\":" + String(repeating: "[", count: 63) + String(repeating: "]", count: 63) + "}")
        }
        #expect(throws: SafeTensorsHeader.SyntaxError.self) {
            _ = try read("{\"a\":" + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + "}")
        }
    }

    @Test func aRepeatedNameIsRefused() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let file = MappedFile(path: "twice.safetensors", contents: rawSafetensors(header: header, data: [UInt8](repeating: 0, count: 8)))
        #expect(throws: TaskVectorError.self) { _ = try SafeTensorsFile(file: file) }
        do {
            _ = try SafeTensorsFile(file: file)
        } catch {
            #expect("\(error)".contains("twice"), "\(error)")
        }
    }

    @Test func outOfRangeNumbersAreNamed() {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}"#
        let file = MappedFile(path: "big.safetensors", contents: rawSafetensors(header: header, data: [0, 0, 0, 0]))
        do {
            _ = try SafeTensorsFile(file: file)
            Issue.record("accepted an offset of 2^64")
        } catch {
            #expect("\(error)".contains("18446744073709551616 is out of range"), "\(error)")
        }
    }

    /// A random report value: what the commands' `--json` reports hold.
    private func randomReport(_ rng: inout SplitMix64, depth: Int) -> Any {
        let keys = ["name", "Name", "a_b", "aB", "a.b", "a-b", "layer.10", "layer.9", "layer.09", "x1", "x10", "x2", "É", "e", "_", "z", "stored_bytes", "storedBytes", ""]
        let strings = ["", "plain", "quote\"", "back\\slash", "a/b", "tab\t", "nl\n", "\u{01}\u{1f}\u{7f}", "é𝛕", "\u{0}"]
        switch rng.next() % (depth > 0 ? 9 : 7) {
        case 0: return strings[Int(rng.next() % UInt64(strings.count))]
        case 1: return [0, 1, -1, Int.max, Int.min, 4096][Int(rng.next() % 6)]
        case 2: return [0.0, -0.0, 0.1, 1.0, 2.5, 1e-5, 1e300, 123456789.125, 0.34661400318145752][Int(rng.next() % 9)]
        case 3: return Float([0.1, 3.0, 1e-7][Int(rng.next() % 3)])
        case 4: return rng.next() % 2 == 0
        case 5: return [UInt64.max, UInt64(7)][Int(rng.next() % 2)]
        case 6: return NSNull()
        case 7: return (0..<Int(rng.next() % 4)).map { _ in randomReport(&rng, depth: depth - 1) }
        default:
            var o: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 6) { o[keys[Int(rng.next() % UInt64(keys.count))]] = randomReport(&rng, depth: depth - 1) }
            return o
        }
    }

    @Test func writesWhatJSONSerializationWrites() throws {
        var rng = SplitMix64(seed: 16_0805)
        for round in 0..<400 {
            var report: [String: Any] = [:]
            for k in 0..<Int(rng.next() % 5) { report["k\(k)"] = randomReport(&rng, depth: 3) }
            for pretty in [true, false] {
                let options: JSONSerialization.WritingOptions = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
                let expected = String(decoding: try JSONSerialization.data(withJSONObject: report, options: options), as: UTF8.self)
                #expect(JSONText.serialize(report, pretty: pretty) == expected, "round \(round), pretty \(pretty)")
            }
        }
    }
}
