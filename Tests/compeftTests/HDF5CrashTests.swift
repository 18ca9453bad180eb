import Foundation
import Testing

/// libhdf5 1.10.8 crashes (SIGSEGV) on the two crafted files in Fixtures/files/formats/crash_*.h5 (sealed from
/// Fuzz/known-crashes/). compeft reads HDF5 in its helper process, so a command given one fails with exit 3
/// and a message naming the file; reading in-process (`COMPEFT_HDF5_READER=in-process`) shows the fixtures
/// really crash libhdf5.
@Suite struct HDF5CrashTests {
    static let files = ["crash_continuation_length_2.h5", "crash_btree2_header_address.h5"]

    @Test(arguments: files)
    func compressOfAFileThatCrashesLibhdf5FailsWithExit3(_ name: String) throws {
        let dir = scratchDirectory("hdf5-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = fixture("formats/" + name)
        let r = try CLI.run(["compress", input, "-o", dir + "/out.cpeft", "--json"])
        #expect(r.status == 3, "\(r.output)")
        #expect(r.out.contains("libhdf5 crashed reading this file (signal 11"), "\(r.output)")
        #expect(r.out.contains("\"file\":\"\(input)\"") || r.out.contains("\"file\" : \"\(input)\""), "\(r.out)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test(arguments: files)
    func theFixtureReallyCrashesLibhdf5InProcess(_ name: String) throws {
        let dir = scratchDirectory("hdf5-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = Tool.run(
            CLI.binary, ["compress", fixture("formats/" + name), "-o", dir + "/out.cpeft"],
            environment: ["COMPEFT_HDF5_READER": "in-process", "SWIFT_BACKTRACE": "enable=no"])
        // Foundation's Process reports a death by signal as the signal's number.
        #expect(r.status == SIGSEGV || r.status == SIGBUS, "\(r.status): \(r.output)")
    }

    @Test func analyzeAndMergeOfACrashingFileFailToo() throws {
        let dir = scratchDirectory("hdf5-crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = fixture("formats/" + Self.files[0])
        let analyze = try CLI.run(["analyze", input, "--densities", "10"])
        #expect(analyze.status == 3, "\(analyze.output)")
        #expect(analyze.stderr.contains("libhdf5 crashed"), "\(analyze.output)")
        let merge = try CLI.run(["merge", input, fixture("formats/keras.weights.h5"), "-o", dir + "/m.safetensors"])
        #expect(merge.status == 3, "\(merge.output)")
        #expect(merge.stderr.contains("libhdf5 crashed"), "\(merge.output)")
    }
}
