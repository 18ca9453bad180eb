import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// The C ABI through its real symbols: Tests/c/test_abi.c is compiled against include/compeft.h and
/// the built libCompeftC.so, and run on containers made here.
@Suite struct CABITests {
    /// Compresses a fixture with the library API (density 10, as the README's examples).
    static func compress(_ fixture: String, base: String? = nil, to path: String) throws {
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture), base: base.map(Fixtures.path))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(10)), to: AtomicFileWriter(path: path))
    }

    /// A folder with everything Tests/c/test_abi.c expects (its header comment lists the files).
    static func makeWorkdir() throws -> String {
        let dir = scratchDirectory("abi")
        let fm = FileManager.default
        try compress("residual.safetensors", to: dir + "/residual.cpeft")
        try compress("lora-bert-seqcls", to: dir + "/lora.cpeft")
        try compress("ia3-gpt2-f16", to: dir + "/ia3-f16.cpeft")
        try compress("full-ft", base: "tiny-bert", to: dir + "/full-ft.cpeft")
        try fm.copyItem(atPath: Fixtures.path("lora-bert-seqcls/adapter_config.json"), toPath: dir + "/lora.adapter_config.json")
        try fm.copyItem(atPath: Fixtures.path("tiny-bert/model.safetensors"), toPath: dir + "/not-a-container.bin")
        try Data().write(to: URL(fileURLWithPath: dir + "/empty.cpeft"))

        // Inputs for the writing functions: a residual file (and its I64 tensor's raw bytes), an adapter
        // folder, and a second expert for merge.
        try fm.copyItem(atPath: Fixtures.path("residual.safetensors"), toPath: dir + "/residual.safetensors")
        let residual = try SafeTensorsFile(path: Fixtures.path("residual.safetensors"))
        let counter = try #require(residual.info("step_counter"))
        try Data(residual.bytes(of: counter)).write(to: URL(fileURLWithPath: dir + "/residual.step_counter"))
        try fm.copyItem(atPath: Fixtures.path("lora-bert-seqcls"), toPath: dir + "/lora-input")
        // An HDF5 file on which libhdf5 crashes (read in the library's helper process), and a good one.
        try fm.copyItem(atPath: Fixtures.path("formats/crash_continuation_length_2.h5"), toPath: dir + "/crash.h5")
        try fm.copyItem(atPath: Fixtures.path("formats/keras.weights.h5"), toPath: dir + "/keras.h5")
        let expert = try TaskVectorInput.load(path: Fixtures.path("lora-bert-seqcls"))
        _ = try AdapterCompressor.compress(expert, options: .init(density: .percent(30)), to: AtomicFileWriter(path: dir + "/lora-b.cpeft"))

        // The Swift serving API's decodes, for the C side to compare with.
        let reader = try ContainerReader(path: dir + "/residual.cpeft")
        for (dtype, suffix) in [(DType.f32, "f32"), (.f16, "f16"), (.bf16, "bf16")] {
            var all: [UInt8] = []
            for t in reader.index.tensors where t.dtype.isFloatingPoint {
                var out = [UInt8](repeating: 0, count: t.count * dtype.byteSize)
                try out.withUnsafeMutableBytes { try reader.decode(t, as: dtype, into: $0) }
                all += out
            }
            try Data(all).write(to: URL(fileURLWithPath: dir + "/residual.expected." + suffix))
        }

        // Damaged copies.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/residual.cpeft")))
        let w = try #require(reader.tensor(named: "layers.10.w"))
        var corrupt = bytes
        corrupt[w.offset + w.length / 2] ^= 0x40
        try Data(corrupt).write(to: URL(fileURLWithPath: dir + "/corrupt-payload.cpeft"))
        try Data(bytes[0..<(bytes.count / 2)]).write(to: URL(fileURLWithPath: dir + "/truncated.cpeft"))
        var newer = bytes
        newer[8] = 2  // major 2, minor 0: version 2.0
        newer[10] = 0
        try Data(newer).write(to: URL(fileURLWithPath: dir + "/newer-version.cpeft"))

        // A rank-9 tensor, beyond COMPEFT_MAX_RANK.
        let values: [Float] = [0.5, -0.25, 0.125, 0, -1, 2]
        let writer = try AtomicFileWriter(path: dir + "/rank9.safetensors")
        try SafeTensorsWriter.write([
            SafeTensorsWriter.Entry(name: "deep", dtype: .f32, shape: [1, 1, 1, 1, 1, 1, 1, 2, 3]) { sink in
                try values.withUnsafeBytes { try sink($0) }
            },
        ], to: writer)
        try writer.commit()
        let input = try TaskVectorInput.load(path: dir + "/rank9.safetensors")
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(50)), to: AtomicFileWriter(path: dir + "/rank9.cpeft"))
        return dir
    }

    @Test func buildTestsBuildsTheSharedLibrary() {
        #expect(FileManager.default.fileExists(atPath: BuiltLibrary.path),
                "\(BuiltLibrary.path) is missing: `swift build --build-tests` should build the CompeftC product")
    }

    @Test(.requiresTool("cc", "clang", "gcc", install: "a C compiler"))
    func cProgramPassesEveryCheckThroughTheCSymbols() throws {
        try #require(FileManager.default.fileExists(atPath: BuiltLibrary.path), "\(BuiltLibrary.path) is not built")
        let dir = try Self.makeWorkdir()
        let program = dir + "/test_abi"
        let compile = Tool.run(Tool.cCompiler!, [
            "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repositoryRoot + "/include",
            repositoryRoot + "/Tests/c/test_abi.c", "-L", BuiltLibrary.directory, "-lCompeftC",
            "-Wl,-rpath," + BuiltLibrary.directory, "-lpthread", "-lm", "-o", program,
        ])
        try #require(compile.status == 0, "compiling test_abi.c failed:\n\(compile.output)")
        // Run from the scratch folder: the program opens a file called "-" and must not find one.
        let run = Tool.run(program, [dir], in: dir)
        print(run.output, terminator: "")
        #expect(run.status == 0, "test_abi failed:\n\(run.output)")
        #expect(run.output.contains(", 0 failed"), "\(run.output)")
    }

    @Test(.requiresTool("c++", "clang++", "g++", install: "a C++ compiler"))
    func headerCompilesAsCPlusPlusWithCLinkage() throws {
        let dir = scratchDirectory("cxx")
        let source = dir + "/uses_header.cpp"
        try """
            #include "compeft.h"
            static_assert(sizeof(compeft_tensor_desc) == 128, "descriptor layout");
            extern "C" compeft_status compeft_close(compeft_handle handle);  // must match the header's linkage
            int main() { compeft_handle h = COMPEFT_NULL_HANDLE; return compeft_close(h) == COMPEFT_ERR_BAD_HANDLE ? 0 : 1; }
            """.write(toFile: source, atomically: true, encoding: .utf8)
        let compile = Tool.run(Tool.cxxCompiler!, [
            "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", repositoryRoot + "/include", source,
            "-L", BuiltLibrary.directory, "-lCompeftC", "-Wl,-rpath," + BuiltLibrary.directory, "-o", dir + "/uses_header",
        ])
        try #require(compile.status == 0, "compiling the header as C++ failed:\n\(compile.output)")
        let run = Tool.run(dir + "/uses_header", [])
        #expect(run.status == 0, "\(run.output)")
    }
}
