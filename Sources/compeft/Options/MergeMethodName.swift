import ArgumentParser
import Foundation
import TaskVector

/// `merge --method`: PEFT's merge methods by the names compeft gives them.
///
/// mergekit's and PEFT's spellings are accepted too (`dare_ties`, `TIES`): case is ignored and `_`
/// reads as `-`.
enum MergeMethodName: String, CaseIterable, Sendable, ExpressibleByArgument, Decodable {
    case taskArithmetic = "task-arithmetic"
    case ties
    case dareLinear = "dare-linear"
    case dareTies = "dare-ties"
    case magnitudePrune = "magnitude-prune"

    init?(argument: String) {
        self.init(rawValue: argument.lowercased().replacingOccurrences(of: "_", with: "-"))
    }

    init(from decoder: any Decoder) throws {
        self = try decodeArgument(MergeMethodName.self, from: decoder)
    }

    /// The method with its density and election (which the linear methods do not use).
    func method(density: Density, election: SignElection) -> MergeMethod {
        switch self {
        case .taskArithmetic: .taskArithmetic
        case .ties: .ties(density: density, election: election)
        case .dareLinear: .dareLinear(density: density)
        case .dareTies: .dareTies(density: density, election: election)
        case .magnitudePrune: .magnitudePrune(density: density)
        }
    }
}
