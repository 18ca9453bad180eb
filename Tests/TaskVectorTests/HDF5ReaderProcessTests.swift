import CompeftTestSupport
import Fixtures
import Foundation
@testable @_spi(InProcess) @_spi(Fuzzing) import TaskVector
import Testing

/// HDF5 is read in the helper process `compeft-hdf5-reader` (issue 16 §7: libhdf5 crashes on crafted files):
/// it reads what the in-process reader reads, a crash in libhdf5 is an error naming the file, and whatever the
/// helper sends is checked before anything is allocated for it.
@Suite struct HDF5ReaderProcessTests {
    /// The helper beside the test bundle (`swift build --build-tests` builds every product).
    static func helper() throws -> String {
        let mode = try HDF5ReaderProcess.mode(for: "test.h5")
        guard case .helper(let path) = mode else {
            Issue.record("COMPEFT_HDF5_READER asks for \(mode); these tests need the helper")
            return ""
        }
        return path
    }

    @Test func theHelperIsFoundBesideTheProgram() throws {
        let path = try Self.helper()
        #expect(path.hasSuffix("/compeft-hdf5-reader"))
        #expect(FileManager.default.isExecutableFile(atPath: path))
    }

    // MARK: - The same results as in-process

    @Test(arguments: ["keras.weights.h5", "mixed.h5", "links.h5", "nested_64.h5", "unsupported.h5", "external_storage.h5"])
    func helperReadsWhatTheInProcessReaderReads(_ name: String) throws {
        let path = FormatFixtures.path(name)
        let helper = try Self.helper()
        for skip in [false, true] {
            let inProcess = Result { try HDF5Reader.readInProcess(path: path, skipUnsupported: skip) }
            let isolated = Result { try HDF5Reader.read(path: path, skipUnsupported: skip, mode: .helper(helper)) }
            switch (inProcess, isolated) {
            case (.success(let a), .success(let b)):
                #expect(a.tensors.map(\.name) == b.tensors.map(\.name))
                #expect(a.tensors.map(\.dtype) == b.tensors.map(\.dtype))
                #expect(a.tensors.map(\.shape) == b.tensors.map(\.shape))
                #expect(a.tensors.map { Array($0.data.bytes) } == b.tensors.map { Array($0.data.bytes) }, "\(name)")
                #expect(a.skipped == b.skipped)
            case (.failure(let a as TaskVectorError), .failure(let b as TaskVectorError)):
                #expect(a == b)
            default:
                Issue.record("\(name) skip=\(skip): in-process \(inProcess), helper \(isolated)")
            }
        }
    }

    @Test(arguments: ["virtual.h5", "nested_65.h5", "huge_unwritten.h5", "external_storage.h5"])
    func helperRefusesWhatTheInProcessReaderRefuses(_ name: String) throws {
        let path = FormatFixtures.path(name)
        let inProcess = expectAnyTaskVectorError { _ = try HDF5Reader.readInProcess(path: path, skipUnsupported: false) }
        let isolated = expectAnyTaskVectorError {
            _ = try HDF5Reader.read(path: path, skipUnsupported: false, mode: .helper(try Self.helper()))
        }
        #expect(inProcess != nil && inProcess == isolated)
        #expect(isolated?.file == path)
    }

    // MARK: - libhdf5 crashes

    /// Files sealed from `Fuzz/known-crashes/` on which libhdf5 1.10.8 reads out of bounds (compeftTests shows
    /// that each ends a process that reads it in-process by a signal).
    static let crashing = ["crash_continuation_length_2.h5", "crash_btree2_header_address.h5"]

    @Test(arguments: crashing)
    func aCrashInLibhdf5IsAnErrorNamingTheFile(_ name: String) throws {
        let path = FormatFixtures.path(name)
        let error = expectTaskVectorError(.malformed) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(error?.message.contains("libhdf5 crashed reading this file (signal") == true, "\(String(describing: error))")
        // And the next file reads as before.
        let keras = FormatFixtures.path("keras.weights.h5")
        #expect(try HDF5Reader.read(path: keras).map(\.name) == HDF5Reader.readInProcess(path: keras, skipUnsupported: false).tensors.map(\.name))
    }

    // MARK: - Finding the helper

    @Test func aMissingHelperIsAnErrorSayingWhereItWasLookedFor() {
        let error = expectTaskVectorError(.unsupported) {
            _ = try HDF5ReaderProcess.mode(for: "in.h5", named: nil, candidates: ["/nowhere/compeft-hdf5-reader"])
        }
        #expect(error?.file == "in.h5")
        #expect(error?.message.contains("/nowhere/compeft-hdf5-reader") == true)
        #expect(error?.message.contains("COMPEFT_HDF5_READER") == true)
    }

    @Test func theEnvironmentNamesTheHelperOrAsksForInProcess() throws {
        #expect(try HDF5ReaderProcess.mode(for: "in.h5", named: "in-process", candidates: []) == .inProcess)
        let helper = try Self.helper()
        #expect(try HDF5ReaderProcess.mode(for: "in.h5", named: helper, candidates: []) == .helper(helper))
        #expect(try HDF5ReaderProcess.mode(for: "in.h5", named: "", candidates: [helper]) == .helper(helper))
        let error = expectTaskVectorError(.unsupported) {
            _ = try HDF5ReaderProcess.mode(for: "in.h5", named: FormatFixtures.path("mixed.h5"), candidates: [helper])
        }
        #expect(error?.message.contains("is not an executable file") == true)
    }

    @Test func cpuAndMemoryAllowancesGrowWithTheFile() {
        #expect(HDF5ReaderProcess.cpuSeconds(forFileOf: 0) == 60)
        #expect(HDF5ReaderProcess.cpuSeconds(forFileOf: 1 << 30) == 120)
        #expect(HDF5ReaderProcess.cpuSeconds(forFileOf: (1 << 30) + 1) == 121)
        #expect(HDF5ReaderProcess.largestDataset(forFileOf: 12_236) == 16 << 20)
        #expect(HDF5ReaderProcess.largestDataset(forFileOf: 1 << 20) == 1100 << 20)
        #expect(HDF5ReaderProcess.largestDataset(forFileOf: 1 << 40) == 1 << 40)
        #expect(HDF5ReaderProcess.largestDataset(forFileOf: .max) == 1 << 40)
        #expect(HDF5ReaderProcess.memoryBytes(forFileOf: 12_236) == (512 << 20) + 3 * (16 << 20))
        #expect(HDF5ReaderProcess.memoryBytes(forFileOf: .max) == (512 << 20) + 3 << 40)
    }

    /// A 12 KB file found by fuzz target 8 on which libhdf5 allocates without end (24 GB, until the system
    /// killed the helper): with the helper's memory limit it fails at once, as an error naming the file.
    @Test func aFileThatMakesLibhdf5AllocateWithoutEndFailsWithinTheHelpersMemoryLimit() throws {
        let path = FormatFixtures.path("memory_bomb.h5")
        let start = ContinuousClock.now
        let error = expectTaskVectorError(.malformed) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(ContinuousClock.now - start < .seconds(30), "the limit should stop it long before the CPU limit")
    }

    // MARK: - A helper that lies or dies

    /// Runs `HDF5Reader.read` on a real fixture with a shell script as the helper; the script's standard
    /// output is what the parent receives.
    private func readWithFakeHelper(_ script: String) throws -> TaskVectorError? {
        let folder = scratchDirectory("fake-hdf5-helper")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let helper = folder + "/compeft-hdf5-reader"
        // Written through a close-on-exec descriptor: a program another thread starts meanwhile must not keep
        // it open for writing (exec would then fail with ETXTBSY).
        let fd = open(helper, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        let text = Array(("#!/bin/sh\n" + script + "\n").utf8)
        #expect(fd >= 0 && text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == text.count)
        close(fd)
        let path = FormatFixtures.path("mixed.h5")
        let error = expectAnyTaskVectorError { _ = try HDF5Reader.read(path: path, skipUnsupported: false, mode: .helper(helper)) }
        #expect(error?.file == path)
        return error
    }

    /// `printf` text for the greeting and for a little-endian integer.
    private static let hello = #"\103\120\110\065\001\000\000\000"#
    private static func le(_ value: UInt64, bytes: Int) -> String {
        (0..<bytes).map { String(format: "\\%03o", Int((value >> (8 * UInt64($0))) & 0xff)) }.joined()
    }
    private static func tensorHeader(name: String = "w", dtype: String = "F32", shape: [UInt64], byteCount: UInt64) -> String {
        "T" + le(UInt64(name.utf8.count), bytes: 4) + name + le(UInt64(dtype.utf8.count), bytes: 4) + dtype
            + le(UInt64(shape.count), bytes: 1) + shape.map { le($0, bytes: 8) }.joined() + le(byteCount, bytes: 8)
    }

    @Test func aProgramThatIsNotTheHelperIsRefused() throws {
        let error = try readWithFakeHelper(#"printf 'HELLO!!!'"#)
        #expect(error?.code == .io)
        #expect(error?.message.contains("is not compeft's HDF5 reader of this version") == true, "\(String(describing: error))")
    }

    @Test func aLyingByteCountIsRefusedBeforeAllocating() throws {
        // 2^62 bytes declared for a 2-element F32 tensor, and for a shape whose product overflows.
        for header in [
            Self.tensorHeader(shape: [2], byteCount: 1 << 62),
            Self.tensorHeader(shape: [1 << 40, 1 << 40], byteCount: 0),
        ] {
            let error = try readWithFakeHelper("printf '\(Self.hello)\(header)'; cat >/dev/null")
            #expect(error?.code == .malformed, "\(String(describing: error))")
            #expect(error?.message.contains("compeft's HDF5 reader process sent") == true, "\(String(describing: error))")
        }
    }

    @Test func aTensorLargerThanTheFileCouldHoldIsRefused() throws {
        // 64 MiB: a size that could be allocated, but more than a dataset of this 31,490-byte file may expand
        // to (1100 × its bytes); and 2^40 bytes, the most any dataset may hold.
        for (count, bytes) in [(UInt64(16 << 20), UInt64(64 << 20)), (1 << 38, 1 << 40)] {
            let header = Self.tensorHeader(shape: [count], byteCount: bytes)
            let error = try readWithFakeHelper("printf '\(Self.hello)\(header)'; cat >/dev/null")
            #expect(error?.code == .malformed)
            #expect(error?.message.contains("more than a dataset of this file may hold (34639000)") == true, "\(String(describing: error))")
        }
    }

    @Test func aTensorCutShortIsAnError() throws {
        let header = Self.tensorHeader(shape: [4], byteCount: 16)
        let error = try readWithFakeHelper("printf '\(Self.hello)\(header)abc'")
        #expect(error?.code == .malformed)
        #expect(error?.message.contains("ended without an answer") == true, "\(String(describing: error))")
    }

    @Test func implausibleRecordsAreRefused() throws {
        let cases: [(String, String)] = [
            ("X", "a record of unknown kind 88"),
            ("T" + Self.le(UInt64(1 << 30), bytes: 4), "a tensor name of 1073741824 bytes"),
            (Self.tensorHeader(dtype: "F128", shape: [1], byteCount: 16), "an unknown dtype for 'w'"),
            (Self.tensorHeader(shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], byteCount: 4), "rank 9 for 'w'"),
            ("E" + Self.le(3, bytes: 4) + "bad", "an unknown error code"),
            ("T" + Self.le(2, bytes: 4) + #"\377\376"#, "a tensor name that is not UTF-8"),
        ]
        for (body, expected) in cases {
            let error = try readWithFakeHelper("printf '\(Self.hello)\(body)'; cat >/dev/null")
            #expect(error?.code == .malformed)
            #expect(error?.message.contains(expected) == true, "\(expected): \(String(describing: error))")
        }
    }

    @Test func theHelpersErrorIsReportedWithThisFileName() throws {
        let body = "E" + Self.le(11, bytes: 4) + "unsupported" + Self.le(1, bytes: 4) + "w" + Self.le(5, bytes: 4) + "nope!"
        let error = try readWithFakeHelper("printf '\(Self.hello)\(body)'; cat >/dev/null")
        #expect(error?.code == .unsupported)
        #expect(error?.tensor == "w")
        #expect(error?.message == "nope!")
    }

    @Test func aHelperKilledOrOutOfTimeIsNamedAsSuch() throws {
        let killed = try readWithFakeHelper("printf '\(Self.hello)'; kill -SEGV $$")
        #expect(killed?.code == .malformed)
        #expect(killed?.message.contains("libhdf5 crashed reading this file (signal 11") == true, "\(String(describing: killed))")
        let slow = try readWithFakeHelper("printf '\(Self.hello)'; kill -PROF $$")
        #expect(slow?.message.contains("more CPU time than compeft allows") == true, "\(String(describing: slow))")
        let exited = try readWithFakeHelper("printf '\(Self.hello)'; exit 7")
        #expect(exited?.message.contains("exit status 7") == true, "\(String(describing: exited))")
    }

    @Test func aHelperThatDoesNotExitCleanlyAfterItsAnswerIsAnError() throws {
        let error = try readWithFakeHelper("printf '\(Self.hello)D'; cat >/dev/null; exit 3")
        #expect(error?.message.contains("exit status 3") == true, "\(String(describing: error))")
    }
}

/// Runs `body`, which must throw a ``TaskVectorError`` of any code, and returns it (or records an issue).
func expectAnyTaskVectorError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> TaskVectorError? {
    do {
        try body()
        Issue.record("expected a TaskVectorError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as TaskVectorError {
        return error
    } catch {
        Issue.record("expected a TaskVectorError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The fuzzer's session: one helper for many files, started again after a crash.
@Suite struct HDF5ReaderSessionTests {
    @Test func aSessionReadsOnAfterItsHelperCrashes() throws {
        let session = HDF5ReaderSession(helper: try HDF5ReaderProcessTests.helper())
        let keras = FormatFixtures.path("keras.weights.h5")
        let expected = try HDF5Reader.readInProcess(path: keras, skipUnsupported: false).tensors.map { Array($0.data.bytes) }
        for round in 0..<3 {
            #expect(try session.read(path: keras, skipUnsupported: false).tensors.map { Array($0.data.bytes) } == expected)
            let error = expectAnyTaskVectorError {
                _ = try session.read(path: FormatFixtures.path(HDF5ReaderProcessTests.crashing[round % 2]), skipUnsupported: false)
            }
            #expect(error?.message.contains("libhdf5 crashed") == true, "\(String(describing: error))")
            // An error the helper reports keeps the helper.
            let refused = expectAnyTaskVectorError { _ = try session.read(path: FormatFixtures.path("virtual.h5"), skipUnsupported: false) }
            #expect(refused?.code == .unsupported)
        }
    }
}
