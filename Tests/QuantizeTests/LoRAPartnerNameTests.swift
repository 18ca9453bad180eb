import CompeftTestSupport
import Foundation
import Testing

@testable import Quantize

/// ``LoRAModule/partnerName(ofA:)``, whose ASCII names are ruled out bytewise, against the Foundation
/// search it keeps for the rest, on seeded random names.
@Suite struct LoRAPartnerNameTests {
    /// The search as it was: the last occurrence of the token, then the suffix and prefix rules.
    private static func reference(_ name: String) -> (prefix: Substring, partner: String)? {
        for (tokenA, tokenB) in [("lora_embedding_A", "lora_embedding_B"), ("lora_A", "lora_B")] {
            guard let r = name.range(of: tokenA, options: .backwards) else { continue }
            let prefix = name[..<r.lowerBound]
            let suffix = name[r.upperBound...]
            guard suffix.isEmpty || suffix == ".weight", prefix.isEmpty || prefix.hasSuffix(".") else { continue }
            return (prefix, prefix + tokenB + suffix)
        }
        return nil
    }

    @Test func partnerNameMatchesTheFoundationSearch() {
        let pieces = ["", ".", "q_proj", "lora_A", "lora_B", "lora_embedding_A", "A", "_A", ".weight", "weight", "é", "🙂", "x"]
        var rng = SplitMix64(seed: 16_0511)
        for round in 0..<20_000 {
            let name = (0..<Int(rng.next() % 6)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let got = LoRAModule.partnerName(ofA: name)
            let want = Self.reference(name)
            #expect(got.map { String($0.prefix) } == want.map { String($0.prefix) }, "round \(round): \(name.debugDescription)")
            #expect(got?.partner == want?.partner, "round \(round): \(name.debugDescription)")
        }
        #expect(LoRAModule.partnerName(ofA: "m.q_proj.lora_A.weight")?.partner == "m.q_proj.lora_B.weight")
    }
}
