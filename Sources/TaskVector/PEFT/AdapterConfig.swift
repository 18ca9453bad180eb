import Foundation

/// The fields of a PEFT `adapter_config.json` that compeft needs; the file itself is kept verbatim.
///
/// For LoRA (`peft_type: LORA`) the fields that decide the layers' shapes and scales are checked as
/// PEFT's `LoraConfig` would have them: `r` a positive integer (PEFT refuses `r: 0`), `lora_alpha`
/// a number, `rank_pattern` and `alpha_pattern` objects of module patterns (each a valid regular
/// expression) to positive integer ranks and to numbers. ``checkRanks(_:file:)`` then checks them
/// against the tensors: a config that disagrees with its weights would load as something else, or
/// not at all, so it is refused rather than compressed, merged or restored.
public struct AdapterConfig: Sendable {
    /// `peft_type`, e.g. `LORA`, `IA3`.
    public var peftType: String
    /// `r` and `lora_alpha` for LoRA, when present.
    public var rank: Int?
    public var loraAlpha: Double?
    public var useRSLoRA: Bool
    /// LoRA's `rank_pattern` and `alpha_pattern`: module pattern → rank, and → alpha.
    public var rankPattern: [String: Int]
    public var alphaPattern: [String: Double]
    /// LoRA's `target_parameters` is set: factors of such layers hold one rank-`r` block per expert.
    public var targetsParameters: Bool
    /// The file's bytes, exactly as read.
    public var raw: [UInt8]

    /// PEFT's `LoraConfig` default rank, used when `r` is absent.
    public static let defaultRank = 8

    /// Parses `bytes`, the `adapter_config.json` at `path` (used in errors).
    ///
    /// - Throws: ``TaskVectorError`` (`.malformed`) naming `path` and the field: not a JSON object, no
    ///   `peft_type`, or (for LoRA) an `r`, `lora_alpha`, `rank_pattern` or `alpha_pattern` PEFT would not load.
    public init(bytes: [UInt8], path: String) throws {
        func bad(_ message: String) -> TaskVectorError { TaskVectorError(.malformed, file: path, "adapter_config.json: \(message)") }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw bad("is not a JSON object")
            }
            object = parsed
        } catch let error as TaskVectorError {
            throw error
        } catch {
            throw bad(JSONDiagnosis.explainUnparsable(bytes) ?? "is not a JSON object")
        }
        guard let type = object["peft_type"] as? String else {
            throw bad("has no \"peft_type\"")
        }
        peftType = type
        raw = bytes
        useRSLoRA = (object["use_rslora"] as? Bool) ?? false
        targetsParameters = ((object["target_parameters"] as? [Any]) ?? []).isEmpty == false
        guard type.uppercased() == "LORA" else {
            rank = object["r"].flatMap(jsonInteger)
            loraAlpha = Self.number(object["lora_alpha"])
            rankPattern = [:]
            alphaPattern = [:]
            return
        }
        if let value = object["r"], !(value is NSNull) {
            rank = try Self.positiveInteger(value, field: "r", bad: bad)
        } else {
            rank = nil
        }
        if let value = object["lora_alpha"], !(value is NSNull) {
            guard let alpha = Self.number(value), alpha.isFinite else {
                throw bad("lora_alpha must be a number, got \(Self.describe(value))")
            }
            loraAlpha = alpha
        } else {
            loraAlpha = nil
        }
        rankPattern = try Self.pattern(object["rank_pattern"], field: "rank_pattern", bad: bad) { key, value in
            try Self.positiveInteger(value, field: "rank_pattern['\(key)']", bad: bad)
        }
        alphaPattern = try Self.pattern(object["alpha_pattern"], field: "alpha_pattern", bad: bad) { key, value in
            guard let alpha = Self.number(value), alpha.isFinite else {
                throw bad("alpha_pattern['\(key)'] must be a number, got \(Self.describe(value))")
            }
            return alpha
        }
    }

    /// Checks every LoRA factor's rank against the config: `rank_pattern` for the modules it matches
    /// (as PEFT matches it: the key is a regular expression for the end of the module's name), else
    /// `r` (PEFT's default 8 when absent). Other PEFT types have nothing to check.
    ///
    /// A factor is `…lora_A.weight` (rank: its first dimension), `…lora_B.weight` (its second), or an
    /// embedding's `…lora_embedding_A` / `…lora_embedding_B`. With `target_parameters`, PEFT stacks one
    /// rank-`r` block per expert, so a multiple of the rank is accepted.
    ///
    /// - Parameters:
    ///   - tensors: every tensor's name and shape.
    ///   - file: the file to name in errors (the config, or the container holding it).
    /// - Throws: ``TaskVectorError`` (`.mismatch`) naming the tensor, its rank and the config's.
    public func checkRanks(_ tensors: [(name: String, shape: [Int])], file: String) throws {
        guard peftType.uppercased() == "LORA" else { return }
        // Compiled once: a mixture-of-experts adapter has 10⁵ factors.
        let patterns = rankPattern.keys.sorted().compactMap { key in Self.patternRegex(key).map { (key, $0) } }
        for (name, shape) in tensors {
            guard let (module, dimension) = Self.loraFactor(name), shape.count > dimension else { continue }
            let found = shape[dimension]
            let key = Self.moduleKey(module)
            let range = NSRange(key.startIndex..., in: key)
            let matches = patterns.filter { $0.1.firstMatch(in: key, range: range) != nil }.map(\.0)
            let expected: Int
            let source: String
            if let first = matches.first {
                if let other = matches.first(where: { rankPattern[$0] != rankPattern[first] }) {
                    throw TaskVectorError(
                        .mismatch, file: file, tensor: name,
                        "adapter_config.json's rank_pattern gives module '\(key)' two ranks: '\(first)' → \(rankPattern[first]!), '\(other)' → \(rankPattern[other]!)")
                }
                expected = rankPattern[first]!
                source = "rank_pattern['\(first)'] = \(expected)"
            } else {
                expected = rank ?? Self.defaultRank
                source = rank == nil ? "no r (PEFT's default is \(expected))" : "r = \(expected)"
            }
            let agrees = targetsParameters ? (found > 0 && found % expected == 0) : found == expected
            guard agrees else {
                throw TaskVectorError(
                    .mismatch, file: file, tensor: name,
                    "has rank \(found) (shape \(shape)) but adapter_config.json says \(source); PEFT would not load it")
            }
        }
    }

    // MARK: - Helpers

    /// The module and rank dimension of a LoRA factor's name, or nil.
    static func loraFactor(_ name: String) -> (module: String, dimension: Int)? {
        for (token, dimension) in [("lora_embedding_A", 0), ("lora_embedding_B", 1), ("lora_A", 0), ("lora_B", 1)] {
            guard let r = name.range(of: token, options: .backwards) else { continue }
            let suffix = name[r.upperBound...]
            guard suffix.isEmpty || suffix == ".weight" else { continue }
            var module = String(name[..<r.lowerBound])
            if module.hasSuffix(".") { module.removeLast() }
            return (module, dimension)
        }
        return nil
    }

    /// The module's name inside the base model, which PEFT matches patterns against.
    static func moduleKey(_ module: String) -> String {
        let prefix = "base_model.model."
        return module.hasPrefix(prefix) ? String(module.dropFirst(prefix.count)) : module
    }

    /// PEFT's `get_pattern_key` test for `key`: `(.*\.)?(key)$` matched from the start of a module name;
    /// nil when `key` is not a valid regular expression.
    static func patternRegex(_ key: String) -> NSRegularExpression? {
        try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$")
    }

    private static func pattern<V>(_ value: Any?, field: String, bad: (String) -> TaskVectorError,
                                   _ convert: (String, Any) throws -> V) throws -> [String: V] {
        guard let value, !(value is NSNull) else { return [:] }
        guard let object = value as? [String: Any] else {
            throw bad("\(field) must be an object of module patterns, got \(describe(value))")
        }
        var out: [String: V] = [:]
        for key in object.keys.sorted() {
            guard patternRegex(key) != nil else {
                throw bad("\(field) key '\(key)' is not a valid regular expression")
            }
            out[key] = try convert(key, object[key]!)
        }
        return out
    }

    private static func positiveInteger(_ value: Any, field: String, bad: (String) -> TaskVectorError) throws -> Int {
        guard let number = value as? NSNumber, !isBoolean(value) else {
            throw bad("\(field) must be a positive integer, got \(describe(value))")
        }
        let type = String(cString: number.objCType)
        if number is NSDecimalNumber {
            // JSONSerialization's type for integers beyond 64 bits.
            let integral = number.doubleValue.rounded() == number.doubleValue
            throw bad(integral ? "\(field) is \(number), out of range: too large for 64 bits"
                               : "\(field) must be a positive integer, got \(number)")
        }
        guard type != "d" && type != "f" else {
            throw bad("\(field) must be a positive integer, got \(number)")
        }
        guard type != "Q" || number.uint64Value <= UInt64(Int64.max) else {
            throw bad("\(field) is \(number), out of range")
        }
        let integer = number.int64Value
        guard integer >= 1 else {
            throw bad("\(field) is \(integer); a LoRA rank must be a positive integer (PEFT refuses \(integer) too)")
        }
        guard integer <= Int64(Int32.max) else {
            throw bad("\(field) is \(integer), out of range (a rank is at most \(Int32.max))")
        }
        return Int(integer)
    }

    private static func number(_ value: Any?) -> Double? {
        guard let value, let number = value as? NSNumber, !isBoolean(value) else { return nil }
        return number.doubleValue
    }

    /// JSON `true` and `false`, which Foundation hands over as NSNumbers too.
    private static func isBoolean(_ value: Any) -> Bool {
        String(describing: type(of: value)).contains("Boolean")
    }

    private static func describe(_ value: Any) -> String {
        if value is String { return "a string" }
        if isBoolean(value) { return "true or false" }
        if value is [Any] { return "a list" }
        if value is [String: Any] { return "an object" }
        if let n = value as? NSNumber { return "\(n)" }
        return "a value of another type"
    }
}
