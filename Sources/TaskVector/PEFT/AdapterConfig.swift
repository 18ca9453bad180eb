import Foundation

/// The fields of a PEFT `adapter_config.json` that compeft needs; the file itself is kept verbatim.
public struct AdapterConfig: Sendable {
    /// `peft_type`, e.g. `LORA`, `IA3`.
    public var peftType: String
    /// `r` and `lora_alpha` for LoRA, when present.
    public var rank: Int?
    public var loraAlpha: Double?
    public var useRSLoRA: Bool
    /// The file's bytes, exactly as read.
    public var raw: [UInt8]

    public init(bytes: [UInt8], path: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw TaskVectorError(.malformed, file: path, "adapter_config.json is not a JSON object")
        }
        guard let type = object["peft_type"] as? String else {
            throw TaskVectorError(.malformed, file: path, "adapter_config.json has no \"peft_type\"")
        }
        peftType = type
        rank = object["r"].flatMap(jsonInteger)
        loraAlpha = (object["lora_alpha"] as? NSNumber)?.doubleValue
        useRSLoRA = (object["use_rslora"] as? Bool) ?? false
        raw = bytes
    }
}
