import CompeftTestSupport
import Foundation
import TaskVector
import Testing

/// `SafeTensorsWriter.validate` hashes names only once they stop increasing; it must refuse exactly the
/// tensor a plain set of every name refuses, whatever the order.
@Suite struct SafeTensorsWriterValidationTests {
    /// The first tensor a set of all names (the former check) refuses, or nil.
    static func reference(_ tensors: [(String, [Int])]) -> String? {
        var seen = Set<String>()
        for (name, shape) in tensors {
            guard name != "__metadata__", seen.insert(name).inserted else { return name }
            guard shape.allSatisfy({ $0 >= 0 }) else { return name }
        }
        return nil
    }

    static func refused(_ tensors: [(String, [Int])]) -> String? {
        do {
            try SafeTensorsWriter.validate(tensors, file: "x.safetensors")
            return nil
        } catch let error as TaskVectorError {
            return error.tensor
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test(arguments: [
        [], ["a"], ["a", "a"], ["a", "b", "a"], ["b", "a", "b"], ["a", "b", "c", "b"], ["a", "__metadata__"],
        ["a", "c", "b", "d", "a"], ["é", "e", "é"], ["a.10", "a.2", "a.10"], ["e\u{301}", "\u{E9}"], ["K", "\u{212A}"],
        ["a", "\u{212A}", "b"],
    ])
    func validateRefusesTheFirstRepeatedOrReservedName(_ names: [String]) {
        let tensors = names.map { ($0, [1]) }
        #expect(Self.refused(tensors) == Self.reference(tensors))
    }

    @Test func validateMatchesASetOnRandomNames() {
        for seed in UInt64(0)..<200 {
            var rng = SplitMix64(seed: seed)
            let count = Int(rng.next() % 40)
            var names = (0..<count).map { _ in "t." + String(rng.next() % 30) }
            if rng.next() % 2 == 0 { names.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) } }
            let tensors = names.map { ($0, rng.next() % 17 == 0 ? [-1] : [2, 3]) }
            #expect(Self.refused(tensors) == Self.reference(tensors), "seed \(seed): \(names)")
        }
    }
}
