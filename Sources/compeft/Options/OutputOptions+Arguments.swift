public import ArgumentParser
public import TaskVector

/// `decompress --format`: how the restored tensors are written.
enum OutputFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    /// safetensors: a PEFT folder for adapters, else the input's files.
    case safetensors
    /// One `.h5` file.
    case hdf5
}

/// `decompress --dtype`: the float types a restored tensor can be written as (`float16`, `half` and
/// the other spellings of ``DType/init(userSpelling:)`` are accepted too).
extension DType: ExpressibleByArgument {
    public init?(argument: String) {
        guard let d = DType(userSpelling: argument), [.f32, .f16, .bf16].contains(d) else { return nil }
        self = d
    }

    public static var allValueStrings: [String] { ["f32", "f16", "bf16"] }

    /// None: `--help` lists the values on one line, as for the other options.
    public static var allValueDescriptions: [String: String] { [:] }

    public var defaultValueDescription: String { rawValue.lowercased() }
}

/// `compress --init`: the init residuals are measured from, for every float tensor (`base` comes
/// only from `--base`).
extension InitRule: ExpressibleByArgument {
    public init?(argument: String) {
        guard let rule = InitRule(rawValue: argument), rule != .base else { return nil }
        self = rule
    }

    public static var allValueStrings: [String] { ["zero", "one"] }
}
