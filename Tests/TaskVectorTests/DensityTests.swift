import Foundation
import TaskVector
import Testing

/// ``Density``: one range check, one parser, one count of kept values for compress, merge and analyze.
@Suite struct DensityTests {
    /// The authors' `int(d * (K / 100))` and PEFT's `int(density * numel)`, in binary64, truncated.
    @Test func keepCountFollowsPythonsFloatArithmetic() {
        #expect(Density.percent(29).keepCount(of: 100) == 28)  // int(100 * (29 / 100)) == 28, not 29
        #expect(Density.fraction(0.29).keepCount(of: 100) == 28)  // int(0.29 * 100) == 28
        #expect(Density.percent(10).keepCount(of: 30) == 3)
        #expect(Density.fraction(0.2).keepCount(of: 7) == 1)
        #expect(Density.fraction(0.5).keepCount(of: 7) == 3)
        #expect(Density.fraction(0.9).keepCount(of: 512) == 460)
        #expect(Density.percent(50).keepCount(of: 1) == 0)
        #expect(Density.percent(50).keepCount(of: 0) == 0)
        #expect(Density.full.keepCount(of: 9) == 9)
        #expect(Density.percent(100).keepCount(of: 7) == 7)
    }

    /// Against Python's rule, computed here as plainly as possible, for every percentage in 0.5 % steps
    /// and a spread of sizes: the two constructors agree with it and with each other.
    @Test func keepCountMatchesTheReferenceOnEveryHalfPercent() {
        for step in 1...200 {
            let k = Double(step) / 2
            for d in [0, 1, 7, 100, 1000, 4097, 123_457, 10_000_019] {
                let reference = Int((Double(d) * (k / 100)).rounded(.towardZero))
                #expect(Density.percent(k).keepCount(of: d) == reference, "K \(k) d \(d)")
                #expect(Density.fraction(k / 100).keepCount(of: d) == reference, "K \(k) d \(d)")
            }
        }
    }

    @Test(arguments: [("20", 20.0), ("20%", 20), (" 5 % ", 5), ("5%", 5), ("0.5%", 0.5), ("1", 1), ("100", 100),
                      ("100%", 100), ("99.9", 99.9), ("1e1", 10)])
    func parsingReadsPercentages(text: String, percent: Double) throws {
        let density = try Density(parsing: text)
        #expect(density.percent == percent)
        #expect(density == .percent(percent))
    }

    @Test(arguments: ["0.2", "0.5", "0.99", ".5"])
    func aBareValueBelowOneIsRefusedWithBothReadings(text: String) throws {
        #expect(throws: DensityError.ambiguous(text)) { try Density(parsing: text) }
        let message = "\(DensityError.ambiguous("0.2"))"
        #expect(message.contains("0.2%") && message.contains("or 20 to keep 20 %"), "\(message)")
    }

    @Test(arguments: ["-5", "0", "0%", "-0.5%", "100.01", "150%", "inf", "-inf"])
    func valuesOutsideTheRangeAreRefused(text: String) {
        #expect(throws: DensityError.outOfRange(text)) { try Density(parsing: text) }
        #expect("\(DensityError.outOfRange(text))".contains("must be in (0, 100]"))
    }

    @Test(arguments: ["", "%", "abc", "20%%", "nan", "twenty", "1,5"])
    func nonNumbersAreRefused(text: String) {
        #expect(throws: DensityError.notANumber(text)) { try Density(parsing: text) }
    }

    @Test(arguments: [0.0, -1, 100.01, .nan, .infinity])
    func percentagesOutsideTheRangeAreRefused(percent: Double) {
        #expect(throws: DensityError.self) { try Density(percent: percent) }
        #expect(throws: DensityError.self) { try Density(fraction: percent / 100) }
    }

    @Test func aFractionAndItsPercentageAreEqual() throws {
        #expect(try Density(fraction: 0.2) == Density(percent: 20))
        #expect(try Density(fraction: 0.29) == Density(percent: 29))
        #expect(Density.fraction(1) == .full)
        #expect(Density.percent(20).description == "20%")
        #expect(Density.percent(0.5).description == "0.5%")
    }

    /// A config file's numbers follow the flag's rules; strings go through the same parser.
    @Test func decodingAppliesTheParsersRules() throws {
        struct Holder: Codable { var density: Density }
        func decode(_ json: String) throws -> Density {
            try JSONDecoder().decode(Holder.self, from: Data(json.utf8)).density
        }
        #expect(try decode(#"{"density": 20}"#) == .percent(20))
        #expect(try decode(#"{"density": "5%"}"#) == .percent(5))
        #expect(try decode(#"{"density": "0.5%"}"#) == .percent(0.5))
        #expect(throws: DecodingError.self) { try decode(#"{"density": 0.2}"#) }
        #expect(throws: DecodingError.self) { try decode(#"{"density": -5}"#) }
        let encoded = try JSONEncoder().encode(Holder(density: .percent(12.5)))
        #expect(String(decoding: encoded, as: UTF8.self) == #"{"density":12.5}"#)
    }
}
