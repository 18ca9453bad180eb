import AdapterFormat
import Foundation
import Quantize
import TaskVector
import Yams

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
/// Unknown keys are an error (a typo should not be ignored). Relative paths (`inputs`, `output`,
/// `base`) are relative to the file's folder. A flag given on the command line overrides the key
/// (``overridden(by:)``); ``plan(expand:)`` then applies the defaults and the checks.
struct MergeSettings: Decodable, Equatable {
    var inputs: [String]?
    var output: String?
    var method: MergeMethodName?
    var density: Density?
    var weights: Weights?
    var lambda: Double?
    var base: String?
    var election: SignElection?
    var seed: UInt64?
    var scope: AdapterMerger.Options.Scope?
    var lora: AdapterMerger.Options.LoRAMode?
    var rank: Int?
    var outDensity: Density?
    var outAlpha: CompressionOptions.Alpha?
    var force: Bool?

    /// The keys of a config file.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case inputs, output, method, density, weights, lambda, base, election, seed, scope, lora, rank, force
        case outDensity = "out_density"
        case outAlpha = "out_alpha"
    }

    /// Merge weights, one per input: a list of numbers, or the flag's comma-separated text.
    struct Weights: Decodable, Equatable {
        var values: [Double]

        init(_ values: [Double]) { self.values = values }

        init(from decoder: any Decoder) throws {
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
        @Sendable static func argument(_ text: String) throws -> Weights {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            let values = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.count == parts.count, values.allSatisfy(\.isFinite) else {
                throw WeightsArgumentError(text: text)
            }
            return Weights(values)
        }
    }

    /// These settings with every value `flags` gives replacing this one's.
    func overridden(by flags: MergeSettings) -> MergeSettings {
        MergeSettings(
            inputs: flags.inputs ?? inputs, output: flags.output ?? output, method: flags.method ?? method,
            density: flags.density ?? density, weights: flags.weights ?? weights, lambda: flags.lambda ?? lambda,
            base: flags.base ?? base, election: flags.election ?? election, seed: flags.seed ?? seed,
            scope: flags.scope ?? scope, lora: flags.lora ?? lora, rank: flags.rank ?? rank,
            outDensity: flags.outDensity ?? outDensity, outAlpha: flags.outAlpha ?? outAlpha, force: flags.force ?? force)
    }
}

extension MergeSettings {
    /// The largest config file read (a config lists paths and a few settings).
    static let maxConfigBytes = 1 << 24

    /// Reads a config file: JSON when its name ends in `.json`, YAML otherwise; relative paths are
    /// resolved against its folder.
    ///
    /// - Throws: ``CLIError`` with ``ExitStatus/ioError`` when the file cannot be read, with
    ///   ``ExitStatus/usage`` when it is not a mapping of the known keys with values of their types.
    static func load(path: String) throws -> MergeSettings {
        let data: Data
        do {
            data = Data(try RegularFile.contents(of: path, limit: maxConfigBytes))
        } catch let error as TaskVectorError {
            throw CLIError(status: .ioError, message: "\(path): cannot read the merge config: \(error.message)")
        }
        func bad(_ message: String) -> CLIError { CLIError(status: .usage, message: "\(path): \(message)") }
        let isJSON = path.lowercased().hasSuffix(".json")
        var settings: MergeSettings
        do {
            let keys = isJSON ? try JSONDecoder().decode(KeyList.self, from: data) : try YAMLDecoder().decode(KeyList.self, from: data)
            let known = Set(CodingKeys.allCases.map(\.rawValue))
            if let unknown = keys.names.sorted().first(where: { !known.contains($0) }) {
                throw bad("unknown key '\(unknown)'; known keys: \(known.sorted().joined(separator: ", "))")
            }
            settings = isJSON ? try JSONDecoder().decode(Self.self, from: data) : try YAMLDecoder().decode(Self.self, from: data)
        } catch let error as CLIError {
            throw error
        } catch DecodingError.dataCorrupted(let context) where isJSON && context.codingPath.isEmpty {
            // A number that does not fit its key (2⁶⁴ for seed) reads as "not valid JSON": name the key.
            throw bad("not a valid JSON merge config: " + JSONDiagnosis.explain(DecodingError.dataCorrupted(context), in: Array(data), as: Self.self))
        } catch let error as DecodingError {
            throw bad(Self.describe(error, isJSON: isJSON))
        } catch {
            throw bad("not a valid \(isJSON ? "JSON" : "YAML") merge config: \(error)")
        }
        if settings.inputs?.isEmpty == true { throw bad("'inputs' must be a non-empty list of paths") }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func resolve(_ p: String) -> String { p.hasPrefix("/") || p == "-" ? p : folder + "/" + p }
        settings.inputs = settings.inputs?.map(resolve)
        settings.output = settings.output.map(resolve)
        settings.base = settings.base.map(resolve)
        return settings
    }

    /// A decoding error as one line that names the key.
    static func describe(_ error: DecodingError, isJSON: Bool) -> String {
        func key(_ context: DecodingError.Context) -> String {
            context.codingPath.filter { $0.intValue == nil }.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return key(context).isEmpty ? "a merge config must be a \(isJSON ? "JSON object" : "YAML mapping")"
                : "'\(key(context))' must be \(describe(type))"
        case .dataCorrupted(let context):
            return key(context).isEmpty ? "not a valid \(isJSON ? "JSON" : "YAML") merge config: \(context.debugDescription)"
                : "'\(key(context))': \(context.debugDescription)"
        case .keyNotFound(let k, _):
            return "missing key '\(k.stringValue)'"
        @unknown default:
            return "\(error)"
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is UInt64.Type: "a non-negative integer"
        case is Double.Type: "a number"
        case is [String].Type: "a list of paths"
        default: "of another type (see the README)"
        }
    }

    /// The keys of a mapping, whatever their values.
    private struct KeyList: Decodable {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        var names: [String]

        init(from decoder: any Decoder) throws {
            names = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue)
        }
    }
}

/// Weights that are not a list of finite numbers.
struct WeightsArgumentError: Error, CustomStringConvertible {
    var text: String
    var description: String { "weights must be comma-separated numbers, like 1,1,0.5; got '\(text)'" }
}
