import Foundation
import Testing

/// `merge` opens `.cpeft` inputs side by side; which input an error names must not depend on which
/// thread finished first: it is the first failing input in the order given, as when they were opened in turn.
@Suite struct MergeOpenOrderTests {
    /// Two containers that fail to open for different reasons: one cut short, one whose index is overwritten.
    static func brokenInputs(in dir: String) throws -> (cut: String, scrambled: String) {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: fixture("containers/lora-bert-seqcls-v1.1.cpeft")))
        let cut = dir + "/cut.cpeft"
        let scrambled = dir + "/scrambled.cpeft"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        var other = bytes
        for i in (bytes.count - 64)..<bytes.count { other[i] ^= 0x5A }
        try other.write(to: URL(fileURLWithPath: scrambled))
        return (cut, scrambled)
    }

    @Test func theErrorNamesTheFirstFailingInputInOrder() throws {
        let dir = scratchDirectory("merge-open-order")
        let (cut, scrambled) = try Self.brokenInputs(in: dir)
        let good = fixture("containers/lora-bert-seqcls-v1.1.cpeft")
        for (inputs, named) in [([cut, scrambled], cut), ([scrambled, cut], scrambled), ([good, scrambled], scrambled)] {
            for _ in 0..<5 {
                let r = try CLI.run(["merge"] + inputs + ["-o", dir + "/out.cpeft", "--force"])
                #expect(r.status != 0)
                let err = r.stderr
                #expect(err.contains(named), "inputs \(inputs): \(err)")
                let other = inputs.first { $0 != named && $0 != good }
                if let other, other != named { #expect(!err.contains(other), "inputs \(inputs): \(err)") }
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.cpeft"))
    }

    /// Two good containers merge as before, whichever order they open in.
    @Test func twoContainersMerge() throws {
        let dir = scratchDirectory("merge-open-two")
        let input = fixture("containers/lora-bert-seqcls-v1.1.cpeft")
        let first = try CLI.run(["merge", input, input, "-o", dir + "/a.cpeft"])
        let second = try CLI.run(["merge", input, input, "-o", dir + "/b.cpeft"])
        #expect(first.status == 0 && second.status == 0, "\(first.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/a.cpeft") == FileManager.default.contents(atPath: dir + "/b.cpeft"))
    }
}
