public import AdapterFormat
import Foundation
public import Quantize
public import TaskVector

/// The settings of `compeft merge`: what the flags give and what `--config FILE` holds, one type for
/// both, so a setting is declared, parsed and checked once.
///
/// A config file is a JSON object (`.json`) or a YAML mapping (any other name; mergekit users write
/// YAML) with the keys of ``CodingKeys``, each optional and spelled as on the command line:
///
/// ```yaml
/// inputs: [math-lora, code-lora.cpeft]
/// output: merged
/// method: ties          # or dare_ties, TIES: case and _ are ignored
/// density: 20           # 20 %, like --density (20%, 0.5%; a bare value below 1 is refused)
/// election: total
/// weights: [1, 0.5]     # or "1,0.5"
/// lambda: 1
/// seed: 0
/// scope: tensor
/// lora: exact
/// rank: 16
/// out_density: 10
/// out_alpha: auto       # or a number
/// force: false
/// ```
///
/// The command line reads the file (`MergeSettings.load(path:)`: unknown keys are an error, relative
/// paths are relative to the file's folder); a flag given on the command line overrides the key
/// (``overridden(by:)``); ``plan(expand:)`` then applies the defaults and the checks. The C ABI fills
/// the same settings from its options object.
public struct MergeSettings: Decodable, Equatable, Sendable {
    public var inputs: [String]?
    public var output: String?
    public var method: MergeMethodName?
    public var density: Density?
    public var weights: Weights?
    public var lambda: Double?
    public var base: String?
    public var election: SignElection?
    public var seed: UInt64?
    public var scope: AdapterMerger.Options.Scope?
    public var lora: AdapterMerger.Options.LoRAMode?
    public var rank: Int?
    public var outDensity: Density?
    public var outAlpha: CompressionOptions.Alpha?
    public var force: Bool?

    /// Settings with every value given; `nil` leaves a setting to a config file or the default.
    public init(inputs: [String]? = nil, output: String? = nil, method: MergeMethodName? = nil, density: Density? = nil,
                weights: Weights? = nil, lambda: Double? = nil, base: String? = nil, election: SignElection? = nil,
                seed: UInt64? = nil, scope: AdapterMerger.Options.Scope? = nil, lora: AdapterMerger.Options.LoRAMode? = nil,
                rank: Int? = nil, outDensity: Density? = nil, outAlpha: CompressionOptions.Alpha? = nil, force: Bool? = nil) {
        self.inputs = inputs
        self.output = output
        self.method = method
        self.density = density
        self.weights = weights
        self.lambda = lambda
        self.base = base
        self.election = election
        self.seed = seed
        self.scope = scope
        self.lora = lora
        self.rank = rank
        self.outDensity = outDensity
        self.outAlpha = outAlpha
        self.force = force
    }

    /// Decodes a config file's mapping: each key takes exactly what its flag takes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            inputs: try c.decodeIfPresent([String].self, forKey: .inputs), output: try c.decodeIfPresent(String.self, forKey: .output),
            method: try c.decodeSetting(MergeMethodName.self, forKey: .method),
            density: try c.decodeIfPresent(Density.self, forKey: .density),
            weights: try c.decodeIfPresent(Weights.self, forKey: .weights), lambda: try c.decodeIfPresent(Double.self, forKey: .lambda),
            base: try c.decodeIfPresent(String.self, forKey: .base),
            election: try c.decodeSetting(SignElection.self, forKey: .election),
            seed: try c.decodeIfPresent(UInt64.self, forKey: .seed),
            scope: try c.decodeSetting(AdapterMerger.Options.Scope.self, forKey: .scope),
            lora: try c.decodeSetting(AdapterMerger.Options.LoRAMode.self, forKey: .lora),
            rank: try c.decodeIfPresent(Int.self, forKey: .rank),
            outDensity: try c.decodeIfPresent(Density.self, forKey: .outDensity),
            outAlpha: try c.decodeIfPresent(CompressionOptions.Alpha.self, forKey: .outAlpha),
            force: try c.decodeIfPresent(Bool.self, forKey: .force))
    }

    /// The keys of a config file.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case inputs, output, method, density, weights, lambda, base, election, seed, scope, lora, rank, force
        case outDensity = "out_density"
        case outAlpha = "out_alpha"
    }

    /// Merge weights, one per input: a list of numbers, or the flag's comma-separated text.
    public struct Weights: Decodable, Equatable, Sendable {
        public var values: [Double]

        public init(_ values: [Double]) { self.values = values }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([Double].self) {
                guard list.allSatisfy(\.isFinite) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "must be finite numbers"))
                }
                self.init(list)
                return
            }
            let text = try container.decode(String.self)
            do {
                self = try Self.argument(text)
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
            }
        }

        /// Parses `--weights 1,0.5` (and the text form of the config key).
        ///
        /// - Throws: ``WeightsArgumentError`` unless every entry is a finite number.
        @Sendable public static func argument(_ text: String) throws -> Weights {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            let values = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.count == parts.count, values.allSatisfy(\.isFinite) else {
                throw WeightsArgumentError(text: text)
            }
            return Weights(values)
        }
    }

    /// These settings with every value `flags` gives replacing this one's.
    public func overridden(by flags: MergeSettings) -> MergeSettings {
        MergeSettings(
            inputs: flags.inputs ?? inputs, output: flags.output ?? output, method: flags.method ?? method,
            density: flags.density ?? density, weights: flags.weights ?? weights, lambda: flags.lambda ?? lambda,
            base: flags.base ?? base, election: flags.election ?? election, seed: flags.seed ?? seed,
            scope: flags.scope ?? scope, lora: flags.lora ?? lora, rank: flags.rank ?? rank,
            outDensity: flags.outDensity ?? outDensity, outAlpha: flags.outAlpha ?? outAlpha, force: flags.force ?? force)
    }
}

/// Weights that are not a list of finite numbers.
public struct WeightsArgumentError: Error, CustomStringConvertible {
    public var text: String
    public var description: String { "weights must be comma-separated numbers, like 1,1,0.5; got '\(text)'" }
}
