import Foundation
public import TaskVector

/// `merge --method`: PEFT's merge methods by the names compeft gives them.
///
/// mergekit's and PEFT's spellings are accepted too (`dare_ties`, `TIES`): case is ignored and `_`
/// reads as `-`.
public enum MergeMethodName: String, CaseIterable, Sendable, SettingName {
    case taskArithmetic = "task-arithmetic"
    case ties
    case dareLinear = "dare-linear"
    case dareTies = "dare-ties"
    case magnitudePrune = "magnitude-prune"

    public init?(settingName text: String) {
        self.init(rawValue: text.lowercased().replacingOccurrences(of: "_", with: "-"))
    }

    /// The method with its density and election (which the linear methods do not use).
    public func method(density: Density, election: SignElection) -> MergeMethod {
        switch self {
        case .taskArithmetic: .taskArithmetic
        case .ties: .ties(density: density, election: election)
        case .dareLinear: .dareLinear(density: density)
        case .dareTies: .dareTies(density: density, election: election)
        case .magnitudePrune: .magnitudePrune(density: density)
        }
    }

    /// Whether the method keeps a share of each expert: by magnitude (ties, magnitude-prune) or at
    /// random (dare-*). Task arithmetic keeps everything.
    public var usesDensity: Bool { self != .taskArithmetic }

    /// Whether the method elects a sign per value (ties, dare-ties).
    public var usesElection: Bool { self == .ties || self == .dareTies }

    /// Whether the method draws random masks (dare-*), from the seed.
    public var usesSeed: Bool { self == .dareLinear || self == .dareTies }

    /// Whether the method takes a magnitude top-k, per tensor or over each expert (ties, magnitude-prune).
    public var usesTopK: Bool { self == .ties || self == .magnitudePrune }
}
