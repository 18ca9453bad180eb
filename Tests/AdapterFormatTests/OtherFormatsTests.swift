import AdapterFormat
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

/// HDF5 and torch `.bin` inputs go through the same compress / decompress path as safetensors.
@Suite struct OtherFormatsTests {
    @Test(arguments: ["formats/keras.weights.h5", "formats/linear_state_dict.bin"])
    func compressAndRestoreNonSafetensorsInputs(fixture: String) throws {
        let dir = scratchDirectory("formats")
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture))
        #expect(!input.tensors.isEmpty)
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(20)), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        let reader = try ContainerReader(path: dir + "/c.cpeft")
        _ = try AdapterDecompressor.decompress(reader, to: dir + "/out.safetensors")
        let restored = try SafeTensorsFile(path: dir + "/out.safetensors")
        let original = try Checkpoint(path: Fixtures.path(fixture))
        #expect(Set(restored.tensors.map(\.name)) == Set(original.names))
        for name in original.names {
            let e = original.entry(name)!
            #expect(restored.info(name)?.shape == e.shape && restored.info(name)?.dtype == e.dtype, "\(name)")
        }
    }

    @Test func peftFolderWithAdapterModelBinIsRead() throws {
        let dir = scratchDirectory("peft-bin")
        // A PEFT folder whose weights are a torch.save file: the LoRA fixture's config (r = 8) with the .bin
        // fixture, whose module v has rank 4; a config that disagrees with its tensors is refused, so it says so.
        let fixtureConfig = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lora-bert-seqcls/adapter_config.json")))
        var config = try #require(try JSONSerialization.jsonObject(with: fixtureConfig) as? [String: Any])
        config["rank_pattern"] = ["v": 4]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        try FileManager.default.copyItem(atPath: Fixtures.path("formats/adapter_model.bin"), toPath: dir + "/adapter_model.bin")
        let input = try TaskVectorInput.load(path: dir)
        #expect(input.kind == .peftAdapter)
        #expect(input.tensors.allSatisfy { $0.fileName == "adapter_model.safetensors" })
    }
}
