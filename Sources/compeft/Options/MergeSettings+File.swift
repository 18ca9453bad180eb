import Commands
import Foundation
import TaskVector
import Yams

// Reading `merge --config FILE` (JSON or YAML) into the settings the C ABI fills from its options object.

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

