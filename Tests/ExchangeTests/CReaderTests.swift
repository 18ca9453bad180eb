import AdapterFormat
import Exchange
import Foundation
import Testing

/// The C ABI reads a container through caller-supplied callbacks (`compeft_open_reader`): Tests/c/test_reader.c
/// uses pread, then libcurl HTTP Range requests to the blob on a real registry. libCompeftC.so links no
/// network code; the transport is the caller's.
@Suite struct CReaderTests {
    static let libraryFolder: String = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            Bundle.main.bundleURL.path, Bundle.main.bundleURL.deletingLastPathComponent().path,
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/libCompeftC.so") } ?? candidates[0]
    }()

    @Test(.requiresTool("cc", "clang", "gcc", install: "a C compiler and libcurl-dev; scripts/bootstrap.sh installs them"))
    func cProgramReadsARegistryBlobThroughRangeCallbacks() throws {
        try #require(FileManager.default.fileExists(atPath: Self.libraryFolder + "/libCompeftC.so"), "libCompeftC.so is not built")
        try #require(FileManager.default.fileExists(atPath: "/usr/include/x86_64-linux-gnu/curl/curl.h") || FileManager.default.fileExists(atPath: "/usr/include/curl/curl.h"),
                     "libcurl's header is missing (Debian package libcurl4-openssl-dev; scripts/bootstrap.sh installs it)")
        let server = try RegistryServer()
        defer { server.stop() }
        let dir = scratchDirectory("creader")
        let path = try Experts.large(count: 200_000, tensors: 3, density: 30, seed: 31)
        let ref = try Reference(parsing: "\(server.address)/c/reader:v1")
        let pushed = try makeRegistry().push(containerAt: path, to: ref)
        let reader = try ContainerReader(path: path)
        let t = try #require(reader.tensor(named: "w1"))
        var values = [Float](repeating: 0, count: t.count)
        try values.withUnsafeMutableBufferPointer { try reader.decodeValues(t, base: nil, into: $0) }
        try values.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir + "/expected.f32")) }

        let program = dir + "/test_reader"
        let compile = Tool.run("cc", [
            "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repositoryRoot + "/include",
            repositoryRoot + "/Tests/c/test_reader.c", "-L", Self.libraryFolder, "-lCompeftC",
            "-Wl,-rpath," + Self.libraryFolder, "-lcurl", "-o", program,
        ])
        try #require(compile.status == 0, "compiling Tests/c/test_reader.c failed:\n\(compile.output)")
        let url = "http://\(server.address)/v2/c/reader/blobs/\(pushed.layer.digest)"
        let run = Tool.run(program, [path, "w1", dir + "/expected.f32", url])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("test_reader: "), "\(run.output)")
        #expect(run.output.contains(", 0 failed"), "\(run.output)")
        print(run.output)
        // The one-tensor decode fetched exactly that tensor's payload.
        #expect(run.output.contains("one tensor \(t.length) bytes in 1;"), "\(run.output)")
    }
}
