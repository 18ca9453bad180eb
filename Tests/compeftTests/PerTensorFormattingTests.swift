import CompeftTestSupport
import Commands
import Foundation
import Testing

@testable import compeft

/// The per-row formatting of `inspect`'s table and the LoRA factor test of its note column, which avoid
/// Foundation per tensor, against the Foundation calls they replace, on edges and seeded random values.
@Suite struct PerTensorFormattingTests {
    @Test func printfWritesWhatStringFormatWrites() {
        var rng = SplitMix64(seed: 16_0520)
        let edges: [Double] = [0, -0.0, 1, -1, 0.5, 1e-5, 1e300, -1e-300, .leastNonzeroMagnitude, .leastNormalMagnitude,
                               .greatestFiniteMagnitude, .infinity, -.infinity, .nan, 123456.5, 0.00012345, 99999.5, 1024]
        let randoms = (0..<5_000).map { _ in Double(bitPattern: rng.next()) }
        for x in edges + randoms {
            for format in ["%.4g", "%.6g", "%.2f%%", "%.1f KiB", "%.2f×"] {
                #expect(TextFormat.printf(format, x) == String(format: format, x), "\(format) of \(x.bitPattern)")
            }
        }
    }

    @Test func trimmingMatchesFoundation() {
        // Every ASCII character at the ends, then random lines with Unicode spaces and combining marks.
        for byte in UInt8(0)..<0x80 {
            let c = String(UnicodeScalar(byte))
            for line in [c, c + "x" + c, "x" + c, c + c + "y"] {
                #expect(String(TextFormat.trimmingWhitespace(line)) == line.trimmingCharacters(in: .whitespaces), "byte \(byte)")
            }
        }
        let pieces = ["", " ", "  ", "\t", "\n", "a", "é", "e\u{301}", "\u{A0}", "\u{2003}", "\u{3000}", "\u{200B}", "x y", "🙂"]
        var rng = SplitMix64(seed: 16_0521)
        for round in 0..<20_000 {
            let line = (0..<Int(rng.next() % 6)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            #expect(String(TextFormat.trimmingWhitespace(line)) == line.trimmingCharacters(in: .whitespaces),
                    "round \(round): \(line.debugDescription)")
        }
    }

    /// ``DroppedLoRAModule/factor(of:)`` as it was: Foundation's first match of each factor token.
    @Test func loraFactorMatchesTheFoundationSearch() {
        func reference(_ name: String) -> (module: String, factor: String)? {
            for factor in ["lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"] {
                if let range = name.range(of: "." + factor), name[range.upperBound...].isEmpty || name[range.upperBound...].hasPrefix(".") {
                    return (String(name[..<range.lowerBound]), factor)
                }
            }
            return nil
        }
        let pieces = ["", ".", "q", ".lora_A", ".lora_B", ".lora_embedding_B", "lora_A", "x", ".weight", "é", "\u{301}", "B"]
        var rng = SplitMix64(seed: 16_0522)
        for round in 0..<20_000 {
            let name = (0..<Int(rng.next() % 6)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let got = DroppedLoRAModule.factor(of: name), want = reference(name)
            #expect(got?.module == want?.module && got?.factor == want?.factor, "round \(round): \(name.debugDescription)")
        }
    }
}
