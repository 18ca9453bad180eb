@testable import AdapterFormat
import Fixtures
import Foundation
import TaskVector
import Testing

/// `MergeSource` finds a tensor by name with a sorted pass and bisection (or a dictionary when its
/// tensors are not in name order); every answer must be a plain linear search's.
@Suite struct MergeSourceLookupTests {
    static func source(_ names: [String]) -> MergeSource {
        let tensors = names.map { MergeSource.Tensor(name: $0, dtype: .f32, shape: [1], file: "model.safetensors", count: 1) }
        return MergeSource(path: "x", format: .checkpoint, kind: .residual, peftType: nil, adapterConfig: nil, tensors: tensors,
                           fileMetadata: [:], auxiliaryFiles: [], storage: { .released })
    }

    @Test func positionIsALinearSearchsOnRandomNamesInAnyOrder() {
        for seed in UInt64(0)..<100 {
            var rng = SplitMix64(seed: seed)
            let count = Int(rng.next() % 50)
            var names = Array(Set((0..<count).map { _ in "layers." + String(rng.next() % 200) + (rng.next() % 2 == 0 ? ".w" : ".é") }))
            if rng.next() % 4 != 0 { names.sort { $0.utf8Precedes($1) } } else { names.shuffle(using: &rng) }
            let s = Self.source(names)
            // In order (the merge's walk), repeated, then at random, and names that are not there.
            var asked = names.flatMap { [$0, $0] }
            asked += (0..<60).map { _ in "layers." + String(rng.next() % 220) + (rng.next() % 2 == 0 ? ".w" : ".é") }
            asked += ["", "layers.", "zzz", "A", "\u{212A}", "layers.1.e\u{301}"]
            for name in asked {
                #expect(s.position(of: name) == names.firstIndex(of: name), "seed \(seed): '\(name)' in \(names)")
                #expect(s.tensor(name)?.name == names.first { $0 == name }, "seed \(seed)")
            }
        }
    }

    /// A name is found by a canonically equivalent one (the Kelvin sign is `K`, a decomposed `é` the
    /// composed one), as a dictionary of names finds it.
    @Test func positionFindsCanonicallyEquivalentNames() {
        let ascii = Self.source(["K", "a", "b"])
        #expect(ascii.position(of: "\u{212A}") == 0)
        let unicode = Self.source(["a", "\u{E9}", "z"])
        #expect(unicode.position(of: "e\u{301}") == 1)
        #expect(unicode.position(of: "z") == 2 && unicode.position(of: "y") == nil)
    }

    @Test func releasedSourceKeepsItsDescriptionAndFindsNoTensor() throws {
        let s = try MergeSource.open(path: Fixtures.path("residual.safetensors"), base: nil)
        let first = try #require(s.tensors.first)
        #expect(s.tensor(first.name) == first)
        s.releaseTensors()
        #expect(s.tensors.isEmpty && s.tensor(first.name) == nil)
        #expect(s.path == Fixtures.path("residual.safetensors") && s.format == .checkpoint && s.kind == .residual)
    }
}
