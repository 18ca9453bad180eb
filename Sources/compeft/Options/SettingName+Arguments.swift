public import AdapterFormat
public import ArgumentParser
public import Commands
public import Quantize
public import TaskVector

// Every option whose value is one of a few names reads it as `SettingName` does, so a flag takes
// exactly what a merge config file and the C ABI's options take; `--help` and shell completion list
// the names.

extension CompressionOptions.Method: ExpressibleByArgument {}

extension CompressionOptions.Scope: ExpressibleByArgument {}

extension CompressionOptions.Scale: ExpressibleByArgument {}

extension CompressionOptions.LoRAGauge: ExpressibleByArgument {}

extension AdapterMerger.Options.Scope: ExpressibleByArgument {}

extension AdapterMerger.Options.LoRAMode: ExpressibleByArgument {}

extension OutputFormat: ExpressibleByArgument {}

extension MergeMethodName: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingName: argument) }
}

extension SignElection: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingName: argument) }
}

extension InitRule: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingName: argument) }
    public static var allValueStrings: [String] { settingNames }
}

extension DType: ExpressibleByArgument {
    public init?(argument: String) { self.init(settingName: argument) }
    public static var allValueStrings: [String] { settingNames }

    /// None: `--help` lists the values on one line, as for the other options.
    public static var allValueDescriptions: [String: String] { [:] }

    public var defaultValueDescription: String { rawValue.lowercased() }
}
