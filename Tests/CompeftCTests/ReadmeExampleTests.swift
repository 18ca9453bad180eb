import Foundation
import Testing

/// The README's C example, compiled as a user would and run on a container.
@Suite struct ReadmeExampleTests {
    @Test(.requiresTool("cc", "clang", "gcc", install: "a C compiler"))
    func readmeCExampleCompilesAndDecodesATensor() throws {
        try #require(FileManager.default.fileExists(atPath: BuiltLibrary.path), "\(BuiltLibrary.path) is not built")
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        let start = try #require(readme.range(of: "```c\n"), "README.md has no C example")
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let dir = scratchDirectory("readme")
        try String(readme[start.upperBound..<end.lowerBound]).write(toFile: dir + "/app.c", atomically: true, encoding: .utf8)
        let compile = Tool.run(Tool.cCompiler!, [
            "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repositoryRoot + "/include", dir + "/app.c",
            "-L", BuiltLibrary.directory, "-lCompeftC", "-Wl,-rpath," + BuiltLibrary.directory, "-o", dir + "/app",
        ])
        try #require(compile.status == 0, "the README's C example does not compile:\n\(compile.output)")
        try CABITests.compress("residual.safetensors", to: dir + "/r.cpeft")
        let ok = Tool.run(dir + "/app", [dir + "/r.cpeft", "layers.10.w"])
        #expect(ok.status == 0 && ok.output.hasPrefix("layers.10.w: 60000 values"), "\(ok.output)")
        let missing = Tool.run(dir + "/app", [dir + "/r.cpeft", "no.such.tensor"])
        #expect(missing.status == 1 && missing.output.contains("no tensor named 'no.such.tensor'"), "\(missing.output)")
    }
}
