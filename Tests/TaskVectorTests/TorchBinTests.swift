import CompeftTestSupport
import Foundation
import Testing

@testable import TaskVector

@Suite("PyTorch .bin reader")
struct TorchBinTests {
    // MARK: - Files written by torch.save

    @Test func readsEveryDtypeOfARealTorchSaveExactly() throws {
        let tensors = try TorchBinReader.read(path: FormatFixtures.path("adapter_model.bin"))
        expectMatchesFixture(tensors, file: "adapter_model.bin")
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        #expect(byName["scale"]?.shape == [])
        #expect(byName["empty"]?.shape == [0, 3])
        #expect(byName["mask"]?.dtype == .bool)
        #expect(byName["base_model.model.v.lora_A.weight"]?.dtype == .bf16)
        // Pickle order is the dict's insertion order.
        #expect(tensors.first?.name == "base_model.model.q.lora_A.weight")
    }

    @Test func sliceSharesItsStorageAtTheRightOffset() throws {
        let tensors = try TorchBinReader.read(path: FormatFixtures.path("adapter_model.bin"))
        let big = try #require(tensors.first { $0.name == "big" })
        let slice = try #require(tensors.first { $0.name == "slice" })
        #expect(slice.shape == [3, 4])
        // big[2:5] starts 8 floats into big's storage: the same bytes, not a copy.
        #expect(slice.data.bytes.baseAddress == big.data.bytes.baseAddress! + 8 * 4)
    }

    @Test func readsModuleStateDictWithMetadataBuild() throws {
        let tensors = try TorchBinReader.read(path: FormatFixtures.path("linear_state_dict.bin"))
        #expect(tensors.map(\.name) == ["weight", "bias"])
        expectMatchesFixture(tensors, file: "linear_state_dict.bin")
    }

    @Test func nestedDictsJoinKeysWithDotsAndSkipNonTensors() throws {
        let contents = try TorchBinReader.load(path: FormatFixtures.path("nested_checkpoint.bin"))
        expectMatchesFixture(contents.tensors, file: "nested_checkpoint.bin")
        #expect(contents.ignored == ["epoch", "name"])
    }

    @Test func readsHandBuiltPickleWithLongIntegers() throws {
        expectMatchesFixture(
            try TorchBinReader.read(path: FormatFixtures.path("hand_built.bin")), file: "hand_built.bin")
    }

    // MARK: - Hostile and broken files

    @Test func refusesPickleReducingOsSystem() {
        let path = FormatFixtures.path("malicious_os_system.bin")
        let error = expectTaskVectorError(.unsupported) { _ = try TorchBinReader.read(path: path) }
        #expect(error?.file == path)
        #expect(
            error?.message
                == "pickle uses global 'os.system', which a tensor state dict never needs; refusing to load "
                + "(compeft never executes pickled code)")
    }

    @Test func refusesStackGlobalSpellingOfBuiltinsEval() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("malicious_stack_global.bin"))
        }
        #expect(error?.message.contains("global 'builtins.eval'") == true)
    }

    @Test func refusesUnknownOpcodeNamingIt() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("unknown_opcode.bin"))
        }
        #expect(error?.message.contains("pickle opcode EXT1 (0x82) at byte 3") == true)
    }

    @Test func refusesStorageOffsetPastTheStorage() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("storage_offset_out_of_range.bin"))
        }
        #expect(error?.tensor == "w")
        #expect(
            error?.message.contains("storage_offset 2 + 4 elements lies outside its storage '0' of 4 elements") == true)
    }

    @Test func refusesShapeWhoseElementCountOverflows() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("lying_tensor_shape.bin"))
        }
        #expect(error?.message.contains("overflows") == true)
    }

    @Test func refusesStorageNumelLargerThanItsEntry() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("lying_storage_numel.bin"))
        }
        #expect(error?.message.contains("declares 1099511627776 F32 elements but its entry holds 16 bytes") == true)
    }

    @Test func refusesMissingStorageEntry() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("missing_storage.bin"))
        }
        #expect(error?.message.contains("storage entry 'archive/data/7' is missing") == true)
    }

    @Test func refusesNonContiguousTensor() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("noncontiguous.bin"))
        }
        #expect(error?.tensor == "t")
        #expect(error?.message.contains("is not contiguous (size [4, 10], stride [1, 4])") == true)
    }

    @Test func refusesTruncatedArchive() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("truncated.bin"))
        }
        #expect(error?.message.contains("end-of-central-directory record is missing") == true)
    }

    @Test func refusesFileThatIsNotAZip() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("not_a_zip.bin"))
        }
        #expect(error?.message.contains("no end-of-central-directory record") == true)
    }

    @Test func refusesLegacyTorchSaveFormat() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("legacy_format.bin"))
        }
        #expect(error?.message.contains("legacy torch.save format") == true)
    }

    @Test func refusesCompressedEntries() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("compressed_entries.bin"))
        }
        #expect(error?.tensor?.hasPrefix("adapter_model/") == true)  // the first entry read
        #expect(error?.message.contains("ZIP entry is compressed (deflate)") == true)
    }

    @Test func refusesEncryptedEntries() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("encrypted_flag.bin"))
        }
        #expect(error?.message.contains("ZIP entry is encrypted") == true)
    }

    @Test func refusesEntrySizeRunningPastTheFile() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("lying_entry_size.bin"))
        }
        #expect(error?.message.contains("lies outside") == true)
    }

    @Test func missingFileIsAnIOError() {
        let path = FormatFixtures.path("no-such-file.bin")
        let error = expectTaskVectorError(.io) { _ = try TorchBinReader.read(path: path) }
        #expect(error?.file == path)
    }

    @Test func emptyFileIsMalformed() {
        let file = MappedFile(path: "empty.bin", contents: [UInt8]())
        _ = expectTaskVectorError(.malformed) { _ = try TorchBinReader.load(file: file) }
    }

    @Test func corruptedStorageFailsItsChecksum() throws {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: FormatFixtures.path("hand_built.bin"))))
        // Flip a bit of the 16 storage bytes (1.0, 2.0, 3.0, 4.0 as float32).
        let one: [UInt8] = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40]
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: one) })
        bytes[at + 3] ^= 0x01
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.load(file: MappedFile(path: "corrupt.bin", contents: bytes))
        }
        #expect(error?.message.contains("CRC-32") == true)
    }
}

/// Seeded bit flips: every mutant either loads or throws a ``TaskVectorError``; none may trap.
@Suite("PyTorch .bin reader on mutated input")
struct TorchBinMutationTests {
    /// SplitMix64, so a failure can be replayed from the printed seed.


    static func mutate(_ bytes: inout [UInt8], in range: Range<Int>, using rng: inout SplitMix64) {
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = Int.random(in: range, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1: bytes[at] = UInt8.random(in: 0...255, using: &rng)
            default: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &rng)]
            }
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func mutatedPicklesLoadOrThrowCleanly(seed: UInt64) throws {
        let original = try ZipArchive(file: MappedFile(path: FormatFixtures.path("adapter_model.bin")))
        var entries: [(String, [UInt8])] = []
        for entry in original.entries { entries.append((entry.name, Array(try original.data(of: entry)))) }
        let pickleIndex = try #require(entries.firstIndex { $0.0.hasSuffix("/data.pkl") })
        var rng = SplitMix64(state: seed)
        var outcomes = (loaded: 0, refused: 0)
        for _ in 0..<300 {
            var mutated = entries
            Self.mutate(&mutated[pickleIndex].1, in: 0..<mutated[pickleIndex].1.count, using: &rng)
            var zip: [UInt8] = []
            try writeStoredZip(mutated, into: &zip)
            do {
                _ = try TorchBinReader.load(file: MappedFile(path: "mutant.bin", contents: zip))
                outcomes.loaded += 1
            } catch is TaskVectorError {
                outcomes.refused += 1
            }
        }
        #expect(outcomes.refused > 0, "seed \(seed)")
    }

    @Test(arguments: [UInt64(4), 5, 6])
    func mutatedZipStructuresLoadOrThrowCleanly(seed: UInt64) throws {
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: FormatFixtures.path("adapter_model.bin"))))
        let directory = try ZipArchive(file: MappedFile(path: "original", contents: original)).centralDirectoryOffset
        var rng = SplitMix64(state: seed)
        var outcomes = (loaded: 0, refused: 0)
        for round in 0..<300 {
            var mutated = original
            // Alternate between the central directory + end records and the local headers' region.
            let range = round.isMultiple(of: 2) ? directory..<original.count : 0..<directory
            Self.mutate(&mutated, in: range, using: &rng)
            do {
                _ = try TorchBinReader.load(file: MappedFile(path: "mutant.bin", contents: mutated))
                outcomes.loaded += 1
            } catch is TaskVectorError {
                outcomes.refused += 1
            }
        }
        // Any other error escapes and fails the test; damaged zip structures are mostly refused.
        #expect(outcomes.loaded + outcomes.refused == 300, "seed \(seed)")
        #expect(outcomes.refused > 0, "seed \(seed): \(outcomes)")
    }
}

/// The unpickler on hostile byte strings built in place.
@Suite("Restricted unpickler")
struct TorchUnpicklerTests {
    let arena = PickleArena()

    func unpickle(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { try TorchUnpickler.unpickle($0, path: "test.pkl", arena: arena) }
    }

    @Test(
        arguments: [
            ([0x80, 0x02, 0x63] + Array("builtins\ngetattr\n".utf8) + [0x2E], "global 'builtins.getattr'"),
            ([0x80, 0x02, 0x69] + Array("os\nsystem\n".utf8) + [0x2E], "INST (0x69)"),
            ([0x80, 0x02, 0x81, 0x2E], "NEWOBJ (0x81)"),
            ([0x80, 0x02, 0x6F, 0x2E], "OBJ (0x6f)"),
            (
                [0x80, 0x02, 0x63] + Array("torch\nComplexFloatStorage\n".utf8) + [0x2E],
                "storage type 'torch.ComplexFloatStorage'"
            ),
        ] as [([UInt8], String)])
    func refusesOpcodesAndGlobalsOutsideTheAllowList(bytes: [UInt8], message: String) {
        let error = expectTaskVectorError(.unsupported) { _ = try unpickle(bytes) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test(
        arguments: [
            ([0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F], "runs past the end"),  // BINUNICODE of 2 GiB
            ([0x80, 0x02, 0x8D] + [UInt8](repeating: 0xFF, count: 8), "runs past the end"),  // BINUNICODE8
            ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo entry 5 was never stored"),  // BINGET
            ([0x80, 0x02, 0x2E], "empty stack"),  // STOP with nothing
            ([0x80, 0x02, 0x7D, 0x4E, 0x73, 0x2E], "needs a value on the stack"),  // SETITEM missing a value
            ([0x80, 0x02, 0x74], "needs a MARK"),  // TUPLE without MARK
            ([0x80, 0x02, 0x8A, 0x09] + [UInt8](repeating: 1, count: 9), "exceeds 64 bits"),  // LONG1 of 9 bytes
            ([0x80, 0x02, 0x7D], "truncated"),  // no STOP
            ([0x80, 0x02, 0x63] + Array("collections".utf8), "no newline"),
        ] as [([UInt8], String)])
    func refusesTruncatedAndInconsistentPickles(bytes: [UInt8], message: String) {
        let error = expectTaskVectorError(.malformed) { _ = try unpickle(bytes) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    @Test func longIntegersAreSignExtended() throws {
        // LONG1 2 bytes 0xFF 0xFE = -257; LONG1 0 bytes = 0; BININT -2
        let value = try unpickle([
            0x80, 0x02, 0x28, 0x8A, 0x02, 0xFF, 0xFE, 0x8A, 0x00, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x74, 0x2E,
        ])
        guard case .tuple(let items, _) = value, items.count == 3, case .int(let a) = items[0],
            case .int(let b) = items[1],
            case .int(let c) = items[2]
        else {
            Issue.record("unexpected \(value)")
            return
        }
        #expect([a, b, c] == [-257, 0, -2] as [Int])
    }

    @Test func selfReferencingListIsCaughtByTheNestingLimit() throws {
        // l = []; l.append(l); {'x': l}: EMPTY_DICT, SHORT_BINUNICODE 'x', EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, SETITEM
        let pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x8C, 0x01, 0x78, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x73, 0x2E]
        let value = try unpickle(pickle)
        guard case .dict = value else {
            Issue.record("unexpected \(value)")
            return
        }
        var zip: [UInt8] = []
        try writeStoredZip([("archive/data.pkl", pickle)], into: &zip)
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.load(file: MappedFile(path: "cycle.bin", contents: zip))
        }
        #expect(error?.message.contains("nests deeper than 32 levels") == true)
    }

    @Test func deeplyNestedTuplesAreRefused() {
        // NONE, then TUPLE1 a hundred thousand times.
        let pickle: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 100_000) + [0x2E]
        let error = expectTaskVectorError(.malformed) { _ = try unpickle(pickle) }
        #expect(error?.message.contains("tuples nest deeper than 32 levels") == true)
    }

    @Test func deeplyNestedListsAreFreedWithoutRecursion() throws {
        // {'x': [([([ ... ],)],)]}: 500,000 EMPTY_LISTs, then TUPLE1 + APPEND 499,999 times, so each
        // list holds a 1-tuple holding the next list. Tuple depth stays 1, but freeing the chain
        // recursively overflows the stack (SIGSEGV here without PickleArena). Loading must fail
        // cleanly (too deep to flatten) and freeing must not crash.
        let n = 500_000
        let pickle: [UInt8] =
            [0x80, 0x02, 0x7D, 0x8C, 0x01, 0x78] + [UInt8](repeating: 0x5D, count: n)
            + Array([[UInt8]](repeating: [0x85, 0x61], count: n - 1).joined()) + [0x73, 0x2E]
        var zip: [UInt8] = []
        try writeStoredZip([("archive/data.pkl", pickle)], into: &zip)
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.load(file: MappedFile(path: "deep.bin", contents: zip))
        }
        #expect(error?.message.contains("nests deeper than 32 levels") == true)
    }

    @Test func contiguityIgnoresUnitDimensions() {
        #expect(TorchBinReader.isContiguous(shape: [3, 4], stride: [4, 1]))
        #expect(TorchBinReader.isContiguous(shape: [1, 4], stride: [99, 1]))
        #expect(TorchBinReader.isContiguous(shape: [], stride: []))
        #expect(TorchBinReader.isContiguous(shape: [0, 4], stride: [7, 7]))
        #expect(!TorchBinReader.isContiguous(shape: [4, 3], stride: [1, 4]))
        #expect(!TorchBinReader.isContiguous(shape: [4], stride: [2]))
    }
}

/// A minimal ZIP of stored entries (no data descriptors), enough to wrap a hand-built pickle.
func writeStoredZip(_ entries: [(String, [UInt8])], into out: inout [UInt8]) throws {
    var central: [UInt8] = []
    for (name, data) in entries {
        let offset = UInt32(out.count)
        let crc = data.withUnsafeBytes { CRC32.checksum($0) }
        let nameBytes = Array(name.utf8)
        out.appendLE(UInt32(0x0403_4B50))
        out.appendLE(UInt16(20))
        out.appendLE(UInt16(0))
        out.appendLE(UInt16(0))  // version, flags, method
        out.appendLE(UInt32(0))  // time, date
        out.appendLE(crc)
        out.appendLE(UInt32(data.count))
        out.appendLE(UInt32(data.count))
        out.appendLE(UInt16(nameBytes.count))
        out.appendLE(UInt16(0))
        out += nameBytes + data
        central.appendLE(UInt32(0x0201_4B50))
        central.appendLE(UInt16(20))
        central.appendLE(UInt16(20))
        central.appendLE(UInt16(0))
        central.appendLE(UInt16(0))
        central.appendLE(UInt32(0))
        central.appendLE(crc)
        central.appendLE(UInt32(data.count))
        central.appendLE(UInt32(data.count))
        central.appendLE(UInt16(nameBytes.count))
        central.appendLE(UInt16(0))
        central.appendLE(UInt16(0))
        central.appendLE(UInt16(0))
        central.appendLE(UInt16(0))
        central.appendLE(UInt32(0))
        central.appendLE(offset)
        central += nameBytes
    }
    let centralOffset = UInt32(out.count)
    out += central
    out.appendLE(UInt32(0x0605_4B50))
    out.appendLE(UInt16(0))
    out.appendLE(UInt16(0))
    out.appendLE(UInt16(entries.count))
    out.appendLE(UInt16(entries.count))
    out.appendLE(UInt32(central.count))
    out.appendLE(centralOffset)
    out.appendLE(UInt16(0))
}
