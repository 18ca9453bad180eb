import CompeftTestSupport
import Testing

@testable import AdapterFormat

/// ``XXH64/hex(_:digits:)``, which spells every payload checksum of an index read, against
/// `String(_:radix:)` zero-padded, at the edges and on seeded random values.
@Suite struct HexDigitsTests {
    @Test func hexDigitsAreTheLowDigitsOfTheRadixString() {
        var rng = SplitMix64(seed: 16_0510)
        let edges: [UInt64] = [0, 1, 9, 10, 15, 16, 0xFFFF_FFFF, 0x1_0000_0000, UInt64.max, UInt64.max - 1, 0x0123_4567_89AB_CDEF]
        for value in edges + (0..<5_000).map({ _ in rng.next() >> (rng.next() % 64) }) {
            let full = String(value, radix: 16)
            let padded = String(repeating: "0", count: 16 - full.count) + full
            #expect(XXH64.hex(value) == padded, "\(value)")
            for digits in [1, 7, 8, 15, 16] {
                #expect(XXH64.hex(value, digits: digits) == String(padded.suffix(digits)), "\(value), \(digits) digits")
            }
        }
    }
}
