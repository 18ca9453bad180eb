import Foundation
import TaskVector

/// How the command line reads densities: every `--density`, `--out-density` and `--densities` goes
/// through ``Density/init(parsing:)``, so `20` and `20%` mean the same everywhere and a refused value
/// is explained, not just called invalid.
extension Density {
    /// The help text shared by every density option.
    static let argumentHelp = "K% of the values kept, 0 < K ≤ 100: 20 and 20% both mean 20 %; a value below 1 needs the % sign (0.5%)"

    /// Parses one option value (a `transform:` for `@Option`).
    ///
    /// - Throws: the ``DensityError``, which ArgumentParser shows after the option's name.
    @Sendable static func argument(_ text: String) throws -> Density {
        try Density(parsing: text)
    }

    /// Parses a comma-separated list (`1,5,10%`): each entry by ``init(parsing:)``, then sorted
    /// ascending with duplicates dropped.
    ///
    /// - Throws: ``DensityListError`` for an empty list or entry, or the entry's ``DensityError``.
    @Sendable static func list(_ text: String) throws -> [Density] {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard items.contains(where: { !$0.isEmpty }) else { throw DensityListError.empty }
        guard !items.contains("") else { throw DensityListError.emptyEntry(text) }
        return Array(Set(try items.map(Density.init(parsing:)))).sorted { $0.fraction < $1.fraction }
    }
}

/// A density list without densities.
enum DensityListError: Error, CustomStringConvertible {
    case empty
    case emptyEntry(String)

    var description: String {
        switch self {
        case .empty: "give at least one density, e.g. 1,5,10"
        case .emptyEntry(let text): "'\(text)' has an empty entry; separate densities with single commas, e.g. 1,5,10"
        }
    }
}
