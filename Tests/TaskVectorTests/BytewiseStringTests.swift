import CompeftTestSupport
import Foundation
import Testing

@testable import TaskVector

/// The byte-level string helpers that replace per-tensor `Character` and Foundation work (``String``
/// `+Bytewise`, the PEFT name tests, ``JSONText`` streaming) against plain references, on seeded random
/// strings with ASCII, multi-byte, combining and control characters, empty strings and long ones.
@Suite struct BytewiseStringTests {
    private static let pieces = ["", "a", "b", ".", "lora_A", "lora_B", "lora_embedding_A", "ia3_l", "weight", "norm", "é",
                                 "e\u{301}", "\u{0}", "\u{7F}", "\u{80}", "ß", "🙂", "\u{3000}", "layers.", "0", "9", "_A", "A.weight"]

    private static func randomString(_ rng: inout SplitMix64) -> String {
        (0..<Int(rng.next() % 8)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
    }

    @Test func utf8PrecedesIsTheBytewiseOrder() {
        var rng = SplitMix64(seed: 16_0501)
        for round in 0..<20_000 {
            let a = Self.randomString(&rng)
            // Half of the pairs share a prefix, so that the comparison reaches past it.
            let b = rng.next() % 2 == 0 ? a + Self.randomString(&rng) : Self.randomString(&rng)
            #expect(a.utf8Precedes(b) == a.utf8.lexicographicallyPrecedes(b.utf8), "round \(round): \(a.debugDescription) \(b.debugDescription)")
            #expect(b.utf8Precedes(a) == b.utf8.lexicographicallyPrecedes(a.utf8), "round \(round)")
            #expect(!a.utf8Precedes(a))
        }
        // A bridged (non-native) string takes the generic path and gives the same answer.
        let bridged = NSString(string: "layers.10.w") as String
        #expect(bridged.utf8Precedes("layers.9.w") && !"layers.9.w".utf8Precedes(bridged))
    }

    @Test func utf8SearchesMatchPlainReferences() {
        var rng = SplitMix64(seed: 16_0502)
        for round in 0..<20_000 {
            let hay = Self.randomString(&rng)
            let needle = rng.next() % 3 == 0 ? "" : Self.randomString(&rng)
            let h = Array(hay.utf8), n = Array(needle.utf8)
            let starts = n.isEmpty || n.count > h.count ? [] : (0...(h.count - n.count)).filter { Array(h[$0..<($0 + n.count)]) == n }
            #expect(hay.utf8Offset(of: needle) == starts.first, "round \(round): \(hay.debugDescription) \(needle.debugDescription)")
            #expect(hay.utf8Offset(of: needle, backwards: true) == starts.last, "round \(round)")
            #expect(hay.utf8HasSuffix(needle) == (h.count >= n.count && Array(h.suffix(n.count)) == n), "round \(round)")
            #expect(hay.isASCIIOnly == h.allSatisfy { $0 < 0x80 }, "round \(round)")
        }
    }

    /// The name tests as they were before the bytewise path: `String` components, `split` and `lowercased`.
    @Test func peftNameTestsMatchTheStringReferences() {
        func hasComponent(_ name: String, _ parts: [String]) -> Bool {
            name.split(separator: ".", omittingEmptySubsequences: false).contains { part in parts.contains { part == $0 } }
        }
        func isNormalisationWeight(_ name: String) -> Bool {
            let parts = name.split(separator: ".")
            guard parts.count >= 2, parts.last == "weight" else { return false }
            let module = parts[parts.count - 2].lowercased()
            return module.contains("norm") || module.hasPrefix("ln_") || module == "ln"
        }
        var rng = SplitMix64(seed: 16_0503)
        for round in 0..<20_000 {
            let name = Self.randomString(&rng)
            #expect(TaskVectorInput.isLoRAFactorName(name) == hasComponent(name, ["lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"]),
                    "round \(round): \(name.debugDescription)")
            #expect(TaskVectorInput.isIA3VectorName(name) == hasComponent(name, ["ia3_l"]), "round \(round): \(name.debugDescription)")
            #expect(TaskVectorInput.isNormalisationWeight(name) == isNormalisationWeight(name), "round \(round): \(name.debugDescription)")
        }
        #expect(TaskVectorInput.isLoRAFactorName("base_model.model.q_proj.lora_A.weight"))
        #expect(!TaskVectorInput.isLoRAFactorName("q_proj.lora_Ax.weight"))
        #expect(TaskVectorInput.isNormalisationWeight("model.layers.0.input_layernorm.weight"))
    }

    /// ``JSONText/write(_:pretty:to:)`` in pieces, with ``JSONText/Elements`` for arrays, gives the text
    /// ``JSONText/serialize(_:pretty:)`` gives for the same report with plain arrays.
    @Test func streamedTextIsTheSerializedText() {
        var rng = SplitMix64(seed: 16_0504)
        func report(_ depth: Int) -> (plain: Any, lazy: Any) {
            switch rng.next() % (depth > 0 ? 5 : 3) {
            case 0:
                let s = "v\u{301}\"\(rng.next() % 9)\n"
                return (s, s)
            case 1: let n = Int(truncatingIfNeeded: rng.next()); return (n, n)
            case 2: let d = Double(rng.next() % 1000) / 7; return (d, d)
            case 3:
                let items = (0..<Int(rng.next() % 4)).map { _ in report(depth - 1) }
                let lazy = items.map(\.lazy)
                return (items.map(\.plain), JSONText.Elements(count: lazy.count) { lazy[$0] })
            default:
                var plain: [String: Any] = [:], lazy: [String: Any] = [:]
                for k in 0..<Int(rng.next() % 4) {
                    let (p, l) = report(depth - 1)
                    plain["k\(k)"] = p
                    lazy["k\(k)"] = l
                }
                return (plain, lazy)
            }
        }
        for round in 0..<300 {
            // A long array too, so that the text crosses the 1 MiB pieces.
            let long = (0..<(round == 0 ? 40_000 : Int(rng.next() % 3))).map { "tensor \($0) \(String(repeating: "x", count: 20))" }
            let (plain, lazy) = report(3)
            let whole: [String: Any] = ["r": plain, "long": long]
            let streamed: [String: Any] = ["r": lazy, "long": JSONText.Elements(count: long.count) { long[$0] }]
            for pretty in [true, false] {
                var out: [UInt8] = []
                var pieces = 0
                JSONText.write(streamed, pretty: pretty) { out.append(contentsOf: $0); pieces += 1 }
                #expect(String(decoding: out, as: UTF8.self) == JSONText.serialize(whole, pretty: pretty), "round \(round), pretty \(pretty)")
                if round == 0 { #expect(pieces > 1) }
            }
        }
    }
}
