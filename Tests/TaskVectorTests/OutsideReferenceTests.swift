import Fixtures
import Foundation
import TaskVector
import Testing

/// Inputs that name other files or devices: compeft reads none of them (issue 16 §1), and opens only
/// regular files (§2; FIFOs, which would block, are tested through the binary in compeftTests).
@Suite struct OutsideReferenceTests {
    // MARK: - HDF5

    @Test func hdf5ExternalStorageIsRefusedNamingDatasetAndFile() {
        // The fixture's dataset keeps its 16 bytes in /etc/passwd; reading it would publish them.
        let path = FormatFixtures.path("external_storage.h5")
        let error = expectTaskVectorError(.unsupported) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(error?.tensor == "leak")
        #expect(error?.message.contains("'/leak' keeps its values in external file '/etc/passwd'") == true, "\(String(describing: error))")
    }

    @Test func hdf5VirtualDatasetIsRefusedNamingItsSource() {
        let path = FormatFixtures.path("virtual.h5")
        let error = expectTaskVectorError(.unsupported) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.tensor == "mirror")
        #expect(
            error?.message.contains("'/mirror' is a virtual dataset mapped onto dataset 'layers/dense/vars/1' in file 'keras.weights.h5'")
                == true, "\(String(describing: error))")
    }

    @Test func hdf5SkipUnsupportedSkipsForeignStorageWithoutReadingIt() throws {
        let contents = try HDF5Reader.read(path: FormatFixtures.path("external_storage.h5"), skipUnsupported: true)
        #expect(contents.tensors.isEmpty)
        #expect(contents.skipped.map(\.tensor) == ["leak"])
    }

    @Test func hdf5ExternalAndSoftLinksAreNotFollowedAndCyclesAreWalkedOnce() throws {
        // links.h5: /w, /g/x, /g/again → /g (a cycle), /soft → /w, /outside → keras.weights.h5:/layers.
        let tensors = try HDF5Reader.read(path: FormatFixtures.path("links.h5"))
        #expect(tensors.map(\.name) == ["g.x", "w"])
        expectMatchesFixture(tensors, file: "links.h5")
    }

    @Test func hdf5NestingAtTheDepthLimitIsRead() throws {
        #expect(HDF5Reader.maxDepth == 64)
        let tensors = try HDF5Reader.read(path: FormatFixtures.path("nested_64.h5"))
        #expect(tensors.map(\.name) == [Array(repeating: "g", count: 64).joined(separator: ".") + ".x"])
        expectMatchesFixture(tensors, file: "nested_64.h5")
    }

    @Test func hdf5NestingBeyondTheDepthLimitIsRefused() {
        let path = FormatFixtures.path("nested_65.h5")
        let error = expectTaskVectorError(.unsupported) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(error?.message.contains("groups nest more than 64 levels deep") == true, "\(String(describing: error))")
    }

    @Test func hdf5WriterRefusesNamesDeeperThanTheReaderReads() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func tensor(depth: Int) -> LoadedTensor {
            let name = Array(repeating: "g", count: depth).joined(separator: ".") + ".x"
            return LoadedTensor(name: name, dtype: .f32, shape: [1], data: TensorData(dtype: .f32, copying: [0, 0, 128, 63]))
        }
        try HDF5Writer.write([tensor(depth: HDF5Reader.maxDepth)], to: folder + "/inside.h5", overwrite: false)
        #expect(try HDF5Reader.read(path: folder + "/inside.h5").count == 1)
        let error = expectTaskVectorError(.unsupported) {
            try HDF5Writer.write([tensor(depth: HDF5Reader.maxDepth + 1)], to: folder + "/outside.h5", overwrite: false)
        }
        #expect(error?.message.contains("more than 64 groups deep") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: folder + "/outside.h5"))
    }

    // MARK: - PyTorch

    @Test func torchStorageKeyThatIsAPathIsLookedUpInsideTheArchiveOnly() {
        let error = expectTaskVectorError(.malformed) {
            _ = try TorchBinReader.read(path: FormatFixtures.path("storage_key_path.bin"))
        }
        #expect(error?.message.contains("storage entry 'archive/data/../../../../../../../../etc/passwd' is missing") == true)
    }

    // MARK: - Sharded checkpoints

    /// A sharded checkpoint whose index maps `w` to `shard`, beside a real shard `model-1.safetensors`.
    static func shardedCheckpoint(mapping shard: String) throws -> String {
        let folder = try FormatFixtures.temporaryFolder()
        let bytes = rawSafetensors(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63])
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/model-1.safetensors"))
        let index: [String: Any] = ["metadata": [:] as [String: Any], "weight_map": ["w": shard]]
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))
        return folder
    }

    @Test(arguments: [
        "../model-1.safetensors", "../../../../etc/passwd", "/etc/passwd", "/dev/zero", "sub/model-1.safetensors",
        "..", ".", "", "model-1.safetensors\u{0}", "./model-1.safetensors",
    ])
    func shardNamesMustBePlainFileNamesInTheIndexFolder(shard: String) throws {
        let folder = try Self.shardedCheckpoint(mapping: shard)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = expectTaskVectorError(.malformed) { _ = try Checkpoint(path: folder) }
        #expect(error?.file == folder + "/model.safetensors.index.json")
        #expect(error?.tensor == "w")
        #expect(error?.message.contains("is not a file name in the index's folder") == true, "\(String(describing: error))")
    }

    @Test func shardThatIsASymlinkToARegularFileIsRead() throws {
        // Hugging Face's cache links every file of a snapshot to a blob in another folder.
        let folder = try Self.shardedCheckpoint(mapping: "model-2.safetensors")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createSymbolicLink(atPath: folder + "/model-2.safetensors", withDestinationPath: "model-1.safetensors")
        let checkpoint = try Checkpoint(path: folder)
        #expect(checkpoint.names == ["w"])
        #expect(checkpoint.entry("w")?.fileName == "model-2.safetensors")
    }

    @Test(arguments: ["/dev/zero", "/dev/null"])
    func shardThatIsASymlinkToADeviceIsRefused(device: String) throws {
        let folder = try Self.shardedCheckpoint(mapping: "model-2.safetensors")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createSymbolicLink(atPath: folder + "/model-2.safetensors", withDestinationPath: device)
        let error = expectTaskVectorError(.io) { _ = try Checkpoint(path: folder) }
        #expect(error?.file == folder + "/model-2.safetensors")
        #expect(error?.message.contains("not a regular file (it is a character device)") == true, "\(String(describing: error))")
    }

    // MARK: - Files that are not regular files (devices and folders; FIFOs in compeftTests)

    @Test func everyReaderRefusesADeviceOrAFolderByName() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let readers: [(String, (String) throws -> Void)] = [
            ("MappedFile", { _ = try MappedFile(path: $0) }),
            ("FileByteSource", { _ = try FileByteSource(path: $0) }),
            ("SafeTensorsFile", { _ = try SafeTensorsFile(path: $0) }),
            ("HDF5Reader", { _ = try HDF5Reader.read(path: $0) }),
            ("TorchBinReader", { _ = try TorchBinReader.read(path: $0) }),
        ]
        for (reader, read) in readers {
            for (path, kind) in [("/dev/zero", "a character device"), (folder, "a folder")] {
                let error = expectTaskVectorError(.io) { try read(path) }
                #expect(error?.file == path, "\(reader)")
                #expect(error?.message.contains("not a regular file (it is \(kind))") == true, "\(reader): \(String(describing: error))")
            }
        }
    }

    @Test func adapterFolderWhoseWeightsAreADeviceIsRefused() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: Fixtures.path("lora-bert-seqcls/adapter_config.json"), toPath: folder + "/adapter_config.json")
        try FileManager.default.createSymbolicLink(atPath: folder + "/adapter_model.safetensors", withDestinationPath: "/dev/zero")
        let error = expectTaskVectorError(.io) { _ = try TaskVectorInput.load(path: folder) }
        #expect(error?.file == folder + "/adapter_model.safetensors")
    }
}
