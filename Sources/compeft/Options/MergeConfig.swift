import Foundation

/// The settings of `compeft merge --config FILE`: a JSON object with the same settings as the flags.
///
/// ```json
/// {
///   "inputs": ["math-lora", "code-lora.cpeft"],
///   "output": "merged",
///   "method": "ties", "density": 20, "election": "total",
///   "weights": [1, 0.5], "lambda": 1, "seed": 0, "scope": "tensor",
///   "base": null, "lora": "exact", "rank": 16,
///   "out_density": 10, "out_alpha": "auto", "force": false
/// }
/// ```
///
/// Every key is optional; unknown keys are an error (a typo should not be ignored). Relative paths
/// (`inputs`, `output`, `base`) are relative to the file's folder. `weights` may also be a string
/// `"1,0.5"`, `out_alpha` a number. A flag given on the command line overrides the key.
struct MergeConfig {
    var inputs: [String]?
    var output: String?
    var method: String?
    var density: Double?
    var weights: [Double]?
    var lambda: Double?
    var base: String?
    var election: String?
    var seed: UInt64?
    var scope: String?
    var lora: String?
    var rank: Int?
    var outDensity: Double?
    var outAlpha: String?
    var force: Bool?

    static let keys: Set<String> = [
        "inputs", "output", "method", "density", "weights", "lambda", "base", "election", "seed", "scope", "lora", "rank",
        "out_density", "out_alpha", "force",
    ]

    init() {}

    /// Reads and checks `path`.
    ///
    /// - Throws: ``CLIError`` with ``ExitStatus/ioError`` when the file cannot be read, with
    ///   ``ExitStatus/usage`` when it is not a JSON object of the known keys and types.
    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(status: .ioError, message: "\(path): cannot read the merge config (no such file?)")
        }
        func bad(_ message: String) -> CLIError { CLIError(status: .usage, message: "\(path): \(message)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("a merge config must be a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw bad("unknown key '\(unknown)'; known keys: \(Self.keys.sorted().joined(separator: ", "))")
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch DecodingError.typeMismatch(let type, let context), DecodingError.valueNotFound(let type, let context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw bad("'\(key)' must be \(Self.describe(type))")
        } catch {
            throw bad("not a valid merge config: \(error)")
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func resolve(_ p: String) -> String { p.hasPrefix("/") || p == "-" ? p : folder + "/" + p }
        if let list = file.inputs {
            guard !list.isEmpty else { throw bad("'inputs' must be a non-empty list of paths") }
            inputs = list.map(resolve)
        }
        output = file.output.map(resolve)
        method = file.method
        density = file.density
        switch file.weights {
        case .list(let w): weights = w
        case .text(let text):
            guard let parsed = MergeCommand.parseWeights(text) else { throw bad("'weights' must be numbers, got '\(text)'") }
            weights = parsed
        case nil: break
        }
        lambda = file.lambda
        base = file.base.map(resolve)
        election = file.election
        seed = file.seed
        scope = file.scope
        lora = file.lora
        rank = file.rank
        outDensity = file.outDensity
        switch file.outAlpha {
        case .text(let t): outAlpha = t
        case .number(let n): outAlpha = "\(n)"
        case nil: break
        }
        force = file.force
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

    /// The file as JSON decodes it; every key optional, strictly typed.
    struct File: Decodable {
        enum Weights: Decodable {
            case list([Double])
            case text(String)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let text = try? c.decode(String.self) { self = .text(text); return }
                self = .list(try c.decode([Double].self))
            }
        }

        enum Alpha: Decodable {
            case text(String)
            case number(Double)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let text = try? c.decode(String.self) { self = .text(text); return }
                self = .number(try c.decode(Double.self))
            }
        }

        var inputs: [String]?
        var output: String?
        var method: String?
        var density: Double?
        var weights: Weights?
        var lambda: Double?
        var base: String?
        var election: String?
        var seed: UInt64?
        var scope: String?
        var lora: String?
        var rank: Int?
        var outDensity: Double?
        var outAlpha: Alpha?
        var force: Bool?

        enum CodingKeys: String, CodingKey {
            case inputs, output, method, density, weights, lambda, base, election, seed, scope, lora, rank, force
            case outDensity = "out_density"
            case outAlpha = "out_alpha"
        }
    }
}
