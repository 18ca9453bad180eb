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
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func resolve(_ p: String) -> String { p.hasPrefix("/") || p == "-" ? p : folder + "/" + p }
        func string(_ key: String) throws -> String? {
            guard let v = object[key], !(v is NSNull) else { return nil }
            guard let s = v as? String else { throw bad("'\(key)' must be a string") }
            return s
        }
        func number(_ key: String) throws -> Double? {
            guard let v = object[key], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !(v is Bool) else { throw bad("'\(key)' must be a number") }
            return n.doubleValue
        }
        func integer(_ key: String) throws -> Int? {
            guard let d = try number(key) else { return nil }
            guard d == d.rounded(), d.magnitude < 0x1p53 else { throw bad("'\(key)' must be an integer") }
            return Int(d)
        }
        if let v = object["inputs"], !(v is NSNull) {
            guard let list = v as? [String], !list.isEmpty else { throw bad("'inputs' must be a non-empty list of paths") }
            inputs = list.map(resolve)
        }
        output = try string("output").map(resolve)
        method = try string("method")
        density = try number("density")
        if let v = object["weights"], !(v is NSNull) {
            if let text = v as? String {
                guard let parsed = MergeCommand.parseWeights(text) else { throw bad("'weights' must be numbers, got '\(text)'") }
                weights = parsed
            } else if let list = v as? [Any], list.allSatisfy({ $0 is NSNumber && !($0 is Bool) }) {
                weights = list.map { ($0 as! NSNumber).doubleValue }
            } else {
                throw bad("'weights' must be a list of numbers or a string like \"1,1,0.5\"")
            }
        }
        lambda = try number("lambda")
        base = try string("base").map(resolve)
        election = try string("election")
        if let s = try integer("seed") {
            guard s >= 0 else { throw bad("'seed' must be a non-negative integer") }
            seed = UInt64(s)
        }
        scope = try string("scope")
        lora = try string("lora")
        rank = try integer("rank")
        outDensity = try number("out_density")
        if let v = object["out_alpha"], !(v is NSNull) {
            if let s = v as? String { outAlpha = s } else if let n = v as? NSNumber, !(v is Bool) { outAlpha = "\(n.doubleValue)" } else {
                throw bad("'out_alpha' must be \"auto\" or a number")
            }
        }
        if let v = object["force"], !(v is NSNull) {
            guard let b = v as? Bool else { throw bad("'force' must be true or false") }
            force = b
        }
    }
}
