import AdapterFormat
import Fixtures
import Foundation
import TaskVector
import Testing

/// A container truncated, rewritten or replaced under an open C ABI handle (issue 16 §3): decoding
/// gives an error or the old content, and the host process survives. Tests/c/test_file_changes.c
/// runs in its own process, so a SIGBUS fails this test rather than killing the runner.
@Suite struct FileChangeTests {
    @Test(.requiresTool("cc", "clang", "gcc", install: "a C compiler"))
    func containerChangedUnderAnOpenHandleIsAnErrorNotACrash() throws {
        try #require(FileManager.default.fileExists(atPath: BuiltLibrary.path), "\(BuiltLibrary.path) is not built")
        let dir = scratchDirectory("file-changes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CABITests.compress("residual.safetensors", to: dir + "/residual.cpeft")
        try CABITests.compress("lora-bert-seqcls", to: dir + "/lora.cpeft")
        let program = dir + "/test_file_changes"
        let compile = Tool.run(Tool.cCompiler!, [
            "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repositoryRoot + "/include",
            repositoryRoot + "/Tests/c/test_file_changes.c", "-L", BuiltLibrary.directory, "-lCompeftC",
            "-Wl,-rpath," + BuiltLibrary.directory, "-o", program,
        ])
        try #require(compile.status == 0, "compiling test_file_changes.c failed:\n\(compile.output)")
        let run = Tool.run(program, [dir])
        #expect(run.status == 0, "test_file_changes ended with status \(run.status) (a signal if it crashed):\n\(run.output)")
        #expect(run.output.contains(", 0 failed"), "\(run.output)")
    }
}
