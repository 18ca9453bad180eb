public import AdapterFormat
public import Quantize
public import TaskVector

/// A setting whose value is one of a few names (`--method ties`, `"scope": "tensor"`), read the same
/// way by every front end: the command line's flags, a merge config file and the C ABI's options.
public protocol SettingName: Sendable {
    /// The value `text` names, as a user may write it; `nil` when it names none.
    init?(settingName text: String)
    /// Every name, in the order help lists them.
    static var settingNames: [String] { get }
}

extension SettingName where Self: CaseIterable & RawRepresentable, RawValue == String {
    public init?(settingName text: String) { self.init(rawValue: text) }
    public static var settingNames: [String] { allCases.map(\.rawValue) }
}

extension SettingName {
    /// Reads `text` as the value of the setting `key`.
    ///
    /// - Throws: ``SettingsError`` naming the setting and every allowed value.
    public static func named(_ text: String, for key: String) throws(SettingsError) -> Self {
        guard let value = Self(settingName: text) else {
            let names = settingNames.joined(separator: ", ")
            throw SettingsError { "\($0.name(key)) must be one of \(names); got '\(text)'" }
        }
        return value
    }
}

extension KeyedDecodingContainer {
    /// Decodes a string setting by ``SettingName/init(settingName:)``, so a config file takes exactly
    /// what the flag takes.
    ///
    /// - Throws: `DecodingError.dataCorrupted` listing the allowed values.
    func decodeSetting<T: SettingName>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let value = T(settingName: text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "must be one of \(T.settingNames.joined(separator: ", ")), got '\(text)'")
        }
        return value
    }
}

extension CompressionOptions.Method: SettingName {}

extension CompressionOptions.Scope: SettingName {}

extension CompressionOptions.Scale: SettingName {}

extension CompressionOptions.LoRAGauge: SettingName {}

extension AdapterMerger.Options.Scope: SettingName {}

extension AdapterMerger.Options.LoRAMode: SettingName {}

extension SignElection: SettingName {
    public init?(settingName text: String) { self.init(rawValue: text.lowercased()) }
}

/// `compress --init`: the init residuals are measured from (`base` comes only from `--base`).
extension InitRule: SettingName {
    public init?(settingName text: String) {
        guard let rule = InitRule(rawValue: text), rule != .base else { return nil }
        self = rule
    }

    public static var settingNames: [String] { ["zero", "one"] }
}

/// `decompress --dtype`: the float types a restored tensor can be written as (`float16`, `half` and the
/// other spellings of ``DType/init(userSpelling:)`` are accepted too).
extension DType: SettingName {
    public init?(settingName text: String) {
        guard let d = DType(userSpelling: text), ContainerReader.decodableTypes.contains(d) else { return nil }
        self = d
    }

    public static var settingNames: [String] { ["f32", "f16", "bf16"] }
}
