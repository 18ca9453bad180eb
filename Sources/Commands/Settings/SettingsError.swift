import Foundation
/// A setting out of range, or settings that do not fit together: what the command line reports as a
/// usage error (exit 2) and the C ABI as `COMPEFT_ERR_INVALID_ARGUMENT`.
///
/// The message names settings through a ``Spelling``, so each front end names them as its users write
/// them: `--out-density` on the command line, `out_density` in the C ABI's options object.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    /// How a message spells a setting's name.
    public enum Spelling: Sendable {
        /// A command-line flag: `--out-density`.
        case flag
        /// A key of the C ABI's options object (and of a merge config file): `out_density`.
        case key

        /// The setting `key` (snake_case, as the options object spells it) in this spelling.
        public func name(_ key: String) -> String {
            switch self {
            case .flag: "--" + key.replacingOccurrences(of: "_", with: "-")
            case .key: key
            }
        }
    }

    private let text: @Sendable (Spelling) -> String

    /// A message built from the spelling of the settings it names.
    public init(_ text: @escaping @Sendable (Spelling) -> String) {
        self.text = text
    }

    /// The message, naming settings in `spelling`.
    public func message(_ spelling: Spelling) -> String { text(spelling) }

    /// The message as the command line shows it.
    public var description: String { message(.flag) }
}
