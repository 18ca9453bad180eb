import Foundation
import TaskVector
import Testing

/// Outputs appear complete or not at all, and the destination is untouched until then (issue 16 §4;
/// the signal cases run the binary, in compeftTests' InterruptionTests).
@Suite struct AtomicFileWriterTests {
    static func folder() throws -> String { try FormatFixtures.temporaryFolder() }

    static func listing(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    @Test func outputIsInvisibleUntilCommitAndCompleteAfter() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try AtomicFileWriter(path: dir + "/out.bin")
        try writer.write([1, 2, 3])
        try writer.write([UInt8](repeating: 7, count: 3 << 20))  // past the buffer: written to the file
        #if os(Linux)
        // An unnamed file (O_TMPFILE) on Linux file systems that have them, as this project's do.
        #expect(Self.listing(dir).isEmpty, "the temporary has a name: \(Self.listing(dir))")
        #endif
        try writer.commit()
        #expect(Self.listing(dir) == ["out.bin"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin"))
        #expect(bytes.count == 3 + (3 << 20) && bytes.prefix(3) == Data([1, 2, 3]))
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/out.bin")[.posixPermissions] as? Int
        #expect(mode == 0o644)
    }

    @Test func abandonedOutputLeavesNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for named in [false, true] {
            let writer = try AtomicFileWriter(path: dir + "/out.bin", overwrite: false, named: named)
            try writer.write([UInt8](repeating: 1, count: 100))
            if named { #expect(Self.listing(dir).count == 1 && Self.listing(dir)[0].hasPrefix(".out.bin.compeft-")) }
            writer.abandon()
            #expect(Self.listing(dir).isEmpty, "named: \(named)")
        }
    }

    @Test(arguments: [false, true])
    func fileThatAppearsMeanwhileIsNotReplacedWithoutOverwrite(named: Bool) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try AtomicFileWriter(path: dir + "/out.bin", overwrite: false, named: named)
        try writer.write([1, 2, 3])
        try Data("someone else's".utf8).write(to: URL(fileURLWithPath: dir + "/out.bin"))
        let error = expectTaskVectorError(.io) { try writer.commit() }
        #expect(error?.message.contains("already exists") == true)
        #expect(try String(contentsOfFile: dir + "/out.bin", encoding: .utf8) == "someone else's")
        #expect(Self.listing(dir) == ["out.bin"])
    }

    @Test(arguments: [false, true])
    func overwriteReplacesTheDestinationOnlyOnCommit(named: Bool) throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir + "/out.bin"))
        let writer = try AtomicFileWriter(path: dir + "/out.bin", overwrite: true, named: named)
        try writer.write(Array("new".utf8))
        #expect(try String(contentsOfFile: dir + "/out.bin", encoding: .utf8) == "old")
        try writer.commit()
        #expect(try String(contentsOfFile: dir + "/out.bin", encoding: .utf8) == "new")
        #expect(Self.listing(dir) == ["out.bin"])
    }

    @Test func mappedOutputIsWrittenBackThroughTheUnnamedFile() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try AtomicFileWriter(path: dir + "/out.bin")
        try writer.write([9])
        let region = try #require(try writer.mapForWriting(size: 4096))
        for i in 1..<region.count { region[i] = UInt8(i & 0xFF) }
        try writer.commit()
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/out.bin")))
        #expect(bytes.count == 4096 && bytes[0] == 9 && bytes[4095] == 0xFF)
        #expect(Self.listing(dir) == ["out.bin"])
    }

    @Test func folderReplacementLeavesNoAsideCopy() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir + "/out/old.txt"))
        let folder = try AtomicDirectoryWriter(path: dir + "/out", overwrite: true)
        let file = try folder.file("new.txt")
        try file.write(Array("new".utf8))
        try file.commit()
        #expect(Self.listing(dir).count == 2)  // the destination and the hidden temporary folder
        try folder.commit()
        #expect(Self.listing(dir) == ["out"])
        #expect(Self.listing(dir + "/out") == ["new.txt"])
    }

    @Test func abandonedFolderLeavesNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let folder = try AtomicDirectoryWriter(path: dir + "/out")
            let file = try folder.file("a.txt")
            try file.write([1])
            try file.commit()
            #expect(Self.listing(dir).count == 1)
        }  // deinit abandons
        #expect(Self.listing(dir).isEmpty)
    }
}
