import Foundation

/// The share of values a magnitude top-k (or DARE's random drop) keeps: K percent, 0 < K ≤ 100.
///
/// One type for every density compeft takes — `compress --density`, `merge --density` and
/// `--out-density`, `analyze --densities`, a merge config file, and the Swift API — so that there is
/// one range check, one way to read what a user typed (``init(parsing:)``) and one count of kept
/// values (``keepCount(of:)``).
///
/// A density made from a percentage K stores the fraction `K / 100` (computed in binary64); one made
/// from a fraction stores it as given. Every count is computed from that fraction, so
/// `Density(percent: 29)` and PEFT's `density=0.29` keep the same values. Two densities are equal when
/// their fractions are.
public struct Density: Sendable, Hashable, CustomStringConvertible {
    /// The fraction of values kept, in (0, 1].
    public let fraction: Double
    /// K, the percentage of values kept, in (0, 100]: as given, or 100 × the fraction given.
    public let percent: Double

    /// Every value kept (K = 100).
    public static let full = Density.percent(100)

    private init(checkedPercent percent: Double) {
        self.percent = percent
        fraction = percent / 100
    }

    /// A density of `percent` per cent.
    ///
    /// - Throws: ``DensityError`` unless 0 < `percent` ≤ 100.
    public init(percent: Double) throws(DensityError) {
        guard percent.isFinite, percent > 0, percent <= 100 else { throw .outOfRange(percent.description) }
        self.init(checkedPercent: percent)
    }

    /// A density given as a fraction, as PEFT's `merge_utils` and mergekit take it: 0.2 keeps 20 %.
    ///
    /// - Throws: ``DensityError`` unless 0 < `fraction` ≤ 1.
    public init(fraction: Double) throws(DensityError) {
        guard fraction.isFinite, fraction > 0, fraction <= 1 else { throw .outOfRange("the fraction \(fraction)") }
        self.fraction = fraction
        percent = fraction * 100
    }

    /// A density written in code as a percentage, such as `.percent(10)`.
    ///
    /// Use ``init(percent:)`` (which throws) for a value that comes from outside the program.
    ///
    /// - Precondition: 0 < `percent` ≤ 100.
    public static func percent(_ percent: Double) -> Density {
        precondition(percent.isFinite && percent > 0 && percent <= 100, "a density is in (0, 100] per cent, got \(percent)")
        return Density(checkedPercent: percent)
    }

    /// A density written in code as a fraction, such as PEFT's `.fraction(0.2)`.
    ///
    /// Use ``init(fraction:)`` (which throws) for a value that comes from outside the program.
    ///
    /// - Precondition: 0 < `fraction` ≤ 1.
    public static func fraction(_ fraction: Double) -> Density {
        guard let density = try? Density(fraction: fraction) else {
            preconditionFailure("a density is a fraction in (0, 1], got \(fraction)")
        }
        return density
    }

    /// Reads a density as a user writes it: `20` and `20%` both mean 20 %.
    ///
    /// A bare number below 1 is refused: PEFT and mergekit write densities as fractions, so `0.2` may
    /// mean 20 % as easily as 0.2 %; the message offers both spellings (`0.2%` or `20`). With a `%` sign
    /// any value in (0, 100] is accepted. Surrounding spaces are ignored.
    ///
    /// - Throws: ``DensityError`` naming the text when it is not a number, is outside (0, 100], or is
    ///   a bare number below 1.
    public init(parsing text: String) throws(DensityError) {
        let trimmed = text.trimmingSpaces
        let hasPercentSign = trimmed.hasSuffix("%")
        let number = hasPercentSign ? String(trimmed.dropLast()).trimmingSpaces : trimmed
        guard !number.isEmpty, let value = Double(number), !value.isNaN else { throw .notANumber(text) }
        try self.init(value: value, spelled: trimmed, hasPercentSign: hasPercentSign)
    }

    /// A density from a number that stands for a percentage without a `%` sign (a config file's
    /// `density: 20`): the rules of ``init(parsing:)`` for a bare number.
    ///
    /// - Throws: ``DensityError`` when the value is outside (0, 100] or below 1.
    public init(bare value: Double) throws(DensityError) {
        try self.init(value: value, spelled: value.shortDescription, hasPercentSign: false)
    }

    private init(value: Double, spelled: String, hasPercentSign: Bool) throws(DensityError) {
        guard value.isFinite, value > 0, value <= 100 else { throw .outOfRange(spelled) }
        if !hasPercentSign && value < 1 { throw .ambiguous(spelled) }
        self.init(checkedPercent: value)
    }

    /// How many of `count` values the top-k keeps before ties: the authors' `int(d * (K / 100))` and
    /// PEFT's `int(density * numel)`, the product taken in binary64 and truncated as Python does.
    ///
    /// It inherits Python's rounding: 29 % of 100 values is 28, since 0.29 × 100 = 28.999999999999996.
    /// ``full`` keeps `count`.
    ///
    /// - Complexity: O(1).
    public func keepCount(of count: Int) -> Int {
        precondition(count >= 0, "count must be ≥ 0, got \(count)")
        return min(count, Int((Double(count) * fraction).rounded(.towardZero)))
    }

    /// `K%`, the percentage in its shortest exact spelling (`20%`, `0.5%`).
    public var description: String { percent.shortDescription + "%" }

    public static func == (a: Density, b: Density) -> Bool { a.fraction == b.fraction }
    public func hash(into hasher: inout Hasher) { hasher.combine(fraction) }
}

extension Density: Codable {
    /// Decodes a number (a percentage, by the rules of ``init(bare:)``) or a string (``init(parsing:)``).
    ///
    /// - Throws: `DecodingError.dataCorrupted` with the ``DensityError``'s message.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            if let text = try? container.decode(String.self) {
                self = try Density(parsing: text)
            } else {
                self = try Density(bare: container.decode(Double.self))
            }
        } catch let error as DensityError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description,
                                                    underlyingError: error))
        }
    }

    /// Encodes the percentage as a number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(percent)
    }
}

/// A density that compeft refuses, with a message that says what to write instead.
public enum DensityError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text is not a number.
    case notANumber(String)
    /// The value is not in (0, 100].
    case outOfRange(String)
    /// A bare number below 1, which could mean a fraction or a percentage.
    case ambiguous(String)

    public var description: String {
        switch self {
        case .notANumber(let text):
            "'\(text)' is not a density; give the percentage of values kept, such as 20 or 20%"
        case .outOfRange(let text):
            "the density must be in (0, 100] (a percentage of the values kept), got \(text)"
        case .ambiguous(let text):
            "density \(text) is ambiguous: compeft reads densities as percentages, but PEFT and mergekit as "
                + "fractions; write \(text)% to keep \(text) % of the values, or \(Self.asPercent(text)) to keep "
                + "\(Self.asPercent(text)) %"
        }
    }

    /// `text` × 100, for the fraction reading of an ambiguous density (`0.29` gives `29`, not
    /// `28.999999999999996`).
    private static func asPercent(_ text: String) -> String {
        guard let value = Double(text) else { return text }
        return (Double(String(format: "%.12g", value * 100)) ?? value * 100).shortDescription
    }
}

extension Double {
    /// The shortest spelling that reads back as this value, without a trailing `.0` (`20`, `0.5`).
    var shortDescription: String {
        if self == rounded(), magnitude < 1e15 { return String(Int64(self)) }
        return description
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
