import AdapterFormat
import Testing

@Suite struct XXH64Tests {
    /// Values printed by the Python `xxhash` package (4.1.0).
    @Test func matchesReferenceVectors() {
        let sentence = Array("Nobody inspects the spammish repetition".utf8)
        let long = Array((0..<3).flatMap { _ in (0...255).map { UInt8($0) } })
        #expect(XXH64.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(XXH64.hash([UInt8(ascii: "a")]) == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH64.hash(sentence) == 0xFBCE_A83C_8A37_8BF1)
        #expect(XXH64.hash(long) == 0x8E03_C838_C596_036F)
        #expect(XXH64.hash([], seed: 1) == 0xD5AF_BA13_36A3_BE4B)
        #expect(XXH64.hash(long, seed: 1) == 0xA802_5737_4B99_ADE3)
        #expect(XXH64.hex(0xAB) == "00000000000000ab")
    }
}
