public import AdapterFormat
public import ArgumentParser
public import TaskVector

// `merge --election`, `--scope` and `--lora`, as flags and as config keys: one definition each.

extension SignElection: ExpressibleByArgument, Decodable {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }

    public init(from decoder: any Decoder) throws {
        self = try decodeArgument(SignElection.self, from: decoder)
    }
}

extension AdapterMerger.Options.Scope: ExpressibleByArgument, Decodable {
    public init(from decoder: any Decoder) throws {
        self = try decodeArgument(AdapterMerger.Options.Scope.self, from: decoder)
    }
}

extension AdapterMerger.Options.LoRAMode: ExpressibleByArgument, Decodable {
    public init(from decoder: any Decoder) throws {
        self = try decodeArgument(AdapterMerger.Options.LoRAMode.self, from: decoder)
    }
}

/// Decodes a string as the command line reads it, so a config file accepts exactly the flag's values.
///
/// - Throws: `DecodingError.dataCorrupted` listing the allowed values.
func decodeArgument<T: ExpressibleByArgument>(_ type: T.Type, from decoder: any Decoder) throws -> T {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let value = T(argument: text) else {
        throw DecodingError.dataCorrupted(.init(
            codingPath: decoder.codingPath, debugDescription: "must be one of \(T.allValueStrings.joined(separator: ", ")), got '\(text)'"))
    }
    return value
}
