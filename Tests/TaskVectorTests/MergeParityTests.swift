import Testing
import TaskVector

struct UnknownMethod: Error { let name: String }

/// Every case of `Fixtures/files/merge/dense.json`: PEFT's `merge_utils` on seeded float32 experts.
@Suite struct MergeParityTests {
    static let cases = (try? DenseCase.all()) ?? []
    static let fixtures = try? MergeFixtures("dense")

    @Test func fixturesCoverEveryMethod() throws {
        let methods = Set(Self.cases.map(\.method))
        #expect(methods == ["task_arithmetic", "ties", "magnitude_prune", "dare_linear", "dare_ties"])
        #expect(Self.cases.count >= 100)
    }

    @Test(arguments: cases)
    func denseMergeMatchesPEFT(_ c: DenseCase) throws {
        let fixtures = try #require(Self.fixtures)
        let experts = try c.inputs.map { try fixtures.floats($0) }
        let expected = try fixtures.floats(c.output)
        let election = SignElection(rawValue: c.majority_sign_method ?? "total")!
        let density = c.density ?? 1
        let masks = try c.masks.map { names in try names.map { DropMask(keeping: try fixtures.bools($0)) } }
        let actual: [Float] = switch c.method {
        case "task_arithmetic": TensorMerge.taskArithmetic(experts, weights: c.weights)
        case "magnitude_prune": TensorMerge.magnitudePrune(experts, weights: c.weights, density: density)
        case "ties": TensorMerge.ties(experts, weights: c.weights, density: density, election: election)
        case "dare_linear": TensorMerge.dareLinear(experts, weights: c.weights, density: density, masks: masks!)
        case "dare_ties": TensorMerge.dareTies(experts, weights: c.weights, density: density, masks: masks!, election: election)
        default: throw UnknownMethod(name: c.method)
        }
        #expect(allClose(actual, expected), "\(c.testDescription): max |Δ| \(zip(actual, expected).map { ($0 - $1).magnitude }.max() ?? 0)")
        // Same operations in the same order as torch: in practice the bits agree too.
        #expect(actual == expected, "\(c.testDescription) agrees within tolerance but not bit for bit")
    }
}
