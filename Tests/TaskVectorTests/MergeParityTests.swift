import Testing
import TaskVector

struct UnknownMethod: Error { let name: String }

/// Every case of `Fixtures/files/merge/dense.json`: PEFT's `merge_utils` on seeded float32 experts.
///
/// A fixture that fails to load fails the run: the cases are loaded with `try`, so a missing or
/// unreadable `dense.json` is an error, never zero cases.
@Suite struct MergeParityTests {
    @Test func fixturesCoverEveryMethod() throws {
        let cases = try DenseCase.all()
        let methods = Set(cases.map(\.method))
        #expect(methods == ["task_arithmetic", "ties", "magnitude_prune", "dare_linear", "dare_ties"])
        #expect(cases.count >= 100)
    }

    @Test(arguments: try DenseCase.all())
    func denseMergeMatchesPEFT(_ c: DenseCase) throws {
        let fixtures = try MergeFixtures("dense")
        let experts = try c.inputs.map { try fixtures.floats($0) }
        let expected = try fixtures.floats(c.output)
        let election = SignElection(rawValue: c.majority_sign_method ?? "total")!
        // PEFT takes density 0 (keep nothing), which no `Density` is: its trim is the threshold that keeps none.
        let keepsNothing = c.density == 0
        let density = keepsNothing ? .fraction(0.5) : try Density(fraction: c.density ?? 1)
        let thresholds = keepsNothing ? Array(repeating: MagnitudeThreshold.keepNone, count: experts.count) : nil
        let masks = try c.masks.map { names in try names.map { DropMask(keeping: try fixtures.bools($0)) } }
        let actual: [Float] = switch c.method {
        case "task_arithmetic": TensorMerge.taskArithmetic(experts, weights: c.weights)
        case "magnitude_prune":
            TensorMerge.merge(experts, weights: c.weights, method: .magnitudePrune(density: density), thresholds: thresholds)
        case "ties":
            TensorMerge.merge(experts, weights: c.weights, method: .ties(density: density, election: election), thresholds: thresholds)
        case "dare_linear": TensorMerge.dareLinear(experts, weights: c.weights, density: density, masks: masks!)
        case "dare_ties": TensorMerge.dareTies(experts, weights: c.weights, density: density, masks: masks!, election: election)
        default: throw UnknownMethod(name: c.method)
        }
        #expect(allClose(actual, expected), "\(c.testDescription): max |Δ| \(zip(actual, expected).map { ($0 - $1).magnitude }.max() ?? 0)")
        // Same operations in the same order as torch: in practice the bits agree too.
        #expect(actual == expected, "\(c.testDescription) agrees within tolerance but not bit for bit")
    }
}
