import Foundation
import TaskVector

/// What a merge reads from, and writes into, a PEFT `adapter_config.json`.
///
/// Reading: the LoRA scale of each module, as PEFT's `LoraLayer.update_layer` computes it —
/// `lora_alpha / r` (or `/ √r` with `use_rslora`), where `alpha_pattern` can override `lora_alpha`
/// per module (matched as PEFT's `get_pattern_key` does: the key is a regex that must match the end of
/// the module's name after a dot) and `r` is the rank the tensors actually have.
///
/// Writing: the first input's config with `r` and `lora_alpha` set to the merged rank (so the scale is
/// 1: every weight and scale lives in the factors), `use_rslora: false`, `rank_pattern` and
/// `alpha_pattern` listing the modules whose rank differs from `r`, and `target_modules` (and
/// `feedforward_modules` for (IA)³) the union over the inputs.
public struct MergedAdapterConfig {
    /// The parsed JSON object.
    var object: [String: Any]
    let path: String

    /// Parses `bytes` (the `adapter_config.json` of `path`).
    public init(bytes: [UInt8], path: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw TaskVectorError(.malformed, file: path, "adapter_config.json is not a JSON object")
        }
        self.object = object
        self.path = path
    }

    var loraAlpha: Double { (object["lora_alpha"] as? NSNumber)?.doubleValue ?? 8 }
    var usesRSLoRA: Bool { (object["use_rslora"] as? Bool) ?? false }
    var usesDoRA: Bool { (object["use_dora"] as? Bool) ?? false }

    /// The scaling of the module `key` (its name inside the base model) at the given rank.
    func scaling(module key: String, rank: Int) -> LoRAScaling {
        var alpha = loraAlpha
        if let pattern = object["alpha_pattern"] as? [String: Any],
            let match = Self.patternKey(pattern.keys.sorted(), matching: key),
            let value = (pattern[match] as? NSNumber)?.doubleValue {
            alpha = value
        }
        return LoRAScaling(rank: rank, alpha: alpha, useRSLoRA: usesRSLoRA)
    }

    /// PEFT's `get_pattern_key`: the first key `k` for which `(.*\.)?(k)$` matches `name` from its start.
    static func patternKey(_ keys: [String], matching name: String) -> String? {
        for key in keys {
            guard let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$") else { continue }
            if regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil { return key }
        }
        return nil
    }

    /// Sets the merged LoRA's ranks: `r = lora_alpha =` the most common rank, patterns for the rest.
    ///
    /// - Parameter ranks: each module's name inside the base model and its merged rank.
    mutating func setLoRARanks(_ ranks: [(key: String, rank: Int)]) {
        var counts: [Int: Int] = [:]
        for (_, r) in ranks { counts[r, default: 0] += 1 }
        let common = counts.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key
            ?? (object["r"] as? NSNumber)?.intValue ?? 8
        object["r"] = common
        object["lora_alpha"] = common
        object["use_rslora"] = false
        var rankPattern: [String: Any] = [:]
        for (key, r) in ranks where r != common {
            rankPattern[NSRegularExpression.escapedPattern(for: key)] = r
        }
        object["rank_pattern"] = rankPattern
        object["alpha_pattern"] = rankPattern
    }

    /// Replaces `field` (`target_modules`, `feedforward_modules`) by its union over `configs`.
    ///
    /// Lists are united and sorted. When every config has the same value it is kept as it is; when
    /// some are regular expressions (PEFT full-matches a string against module names), the result is
    /// their alternation, with list entries turned into the suffix patterns PEFT means by them.
    mutating func unite(_ field: String, over configs: [MergedAdapterConfig]) {
        let values = configs.map { $0.object[field] }
        guard values.contains(where: { $0 != nil && !($0 is NSNull) }) else { return }
        let lists = values.compactMap { $0 as? [String] }
        if lists.count == values.count {
            object[field] = Array(Set(lists.joined())).sorted()
            return
        }
        let texts = values.map { v -> String? in
            if let s = v as? String { return s }
            if let l = v as? [String], !l.isEmpty {
                return "(.*\\.)?(" + l.map(NSRegularExpression.escapedPattern(for:)).joined(separator: "|") + ")"
            }
            return nil
        }
        let distinct = texts.compactMap { $0 }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        if distinct.count == 1 { object[field] = distinct[0]; return }
        object[field] = distinct.map { "(?:\($0))" }.joined(separator: "|")
    }

    /// The file's bytes: pretty-printed JSON with sorted keys.
    func bytes() throws -> [UInt8] {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// The module key PEFT matches patterns against: the tensor's module name without PEFT's
    /// `base_model.model.` prefix.
    static func moduleKey(_ module: String) -> String {
        let prefix = "base_model.model."
        return module.hasPrefix(prefix) ? String(module.dropFirst(prefix.count)) : module
    }
}
