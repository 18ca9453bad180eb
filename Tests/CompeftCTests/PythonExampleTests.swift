import AdapterFormat
import Fixtures
import Foundation
import TaskVector
import Testing

/// Examples/python/decode_with_ctypes.py: decodes every tensor through the C ABI with ctypes and checks it
/// against the decompressed files, read with the safetensors package.
@Suite struct PythonExampleTests {
    /// F32, F16 and BF16 adapters, a residual file with F64, I64, scalar and empty tensors, and a sharded
    /// full fine-tune.
    @Test(.requiresPython("numpy", "safetensors", install: "scripts/bootstrap.sh installs them"),
          arguments: ["lora-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16", "residual.safetensors", "full-ft"])
    func ctypesExampleDecodesEveryTensorAsDecompressWritesIt(fixture: String) throws {
        try #require(FileManager.default.fileExists(atPath: BuiltLibrary.path), "\(BuiltLibrary.path) is not built")
        let dir = scratchDirectory("python")
        let container = dir + "/c.cpeft"
        try CABITests.compress(fixture, base: fixture == "full-ft" ? "tiny-bert" : nil, to: container)
        let reader = try ContainerReader(path: container)
        let isFile = !AdapterDecompressor.writesFolder(reader.index)
        let restored = dir + (isFile ? "/restored.safetensors" : "/restored")
        let restoredF32 = dir + (isFile ? "/restored-f32.safetensors" : "/restored-f32")
        _ = try AdapterDecompressor.decompress(reader, to: restored)
        _ = try AdapterDecompressor.decompress(reader, to: restoredF32, dtype: .f32)
        let run = Tool.run(Tool.find("python3")!, [
            repositoryRoot + "/Examples/python/decode_with_ctypes.py", container, restored, "--f32", restoredF32,
            "--lib", BuiltLibrary.path,
        ])
        #expect(run.status == 0, "decode_with_ctypes.py failed on \(fixture):\n\(run.output)")
        let tensors = reader.index.tensors
        let floats = tensors.filter { $0.dtype.isFloatingPoint }.count
        #expect(run.output.contains("ok: \(floats) tensors decoded"), "\(run.output)")
        #expect(run.output.contains("(\(tensors.count - floats) non-float skipped)"), "\(run.output)")
    }
}
