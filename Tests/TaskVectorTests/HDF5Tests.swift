import Foundation
import TaskVector
import Testing

@Suite("HDF5 reader and writer")
struct HDF5Tests {
    // MARK: - Reading

    @Test func readsKerasWeightsLayoutWithDottedNames() throws {
        let tensors = try HDF5Reader.read(path: FormatFixtures.path("keras.weights.h5"))
        #expect(
            tensors.map(\.name) == [
                "layers.dense.vars.0", "layers.dense.vars.1", "layers.dense_1.vars.0", "layers.dense_1.vars.1",
                "optimizer.vars.0",
            ])
        expectMatchesFixture(tensors, file: "keras.weights.h5")
    }

    @Test func readsBothByteOrdersEveryWidthScalarsAndCompressedDataExactly() throws {
        let tensors = try HDF5Reader.read(path: FormatFixtures.path("mixed.h5"))
        expectMatchesFixture(tensors, file: "mixed.h5")
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        #expect(byName["scalar.f32"]?.shape == [])
        #expect(byName["empty"]?.shape == [0, 4])
        #expect(byName["empty"]?.data.count == 0)
        #expect(byName["bf16"]?.dtype == .bf16)
    }

    @Test func refusesUnsupportedDatasetTypesNamingFileAndDataset() throws {
        let path = FormatFixtures.path("unsupported.h5")
        let error = expectTaskVectorError(.unsupported) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        // Datasets are visited in name order: "flags" (h5py's bool, an HDF5 enum) comes first.
        #expect(error?.tensor == "flags")
        #expect(error?.message.contains("HDF5 dataset type enum is not supported") == true)
    }

    @Test func skipUnsupportedListsEachSkippedDatasetWithItsType() throws {
        let contents = try HDF5Reader.read(path: FormatFixtures.path("unsupported.h5"), skipUnsupported: true)
        expectMatchesFixture(contents.tensors, file: "unsupported.h5")
        #expect(contents.skipped.map(\.tensor) == ["flags", "names", "records"])
        let types = contents.skipped.map { error in
            ["enum", "string", "compound"].first { error.message.contains("type \($0) is not supported") }
        }
        #expect(types == ["enum", "string", "compound"])
    }

    @Test func missingFileIsAnIOErrorNamingIt() {
        let path = FormatFixtures.path("no-such-file.h5")
        let error = expectTaskVectorError(.io) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(error?.message.contains("No such file") == true)
    }

    @Test func fileWithoutHDF5SignatureIsMalformed() {
        let path = FormatFixtures.path("not_a_zip.bin")
        let error = expectTaskVectorError(.malformed) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.message.contains("not an HDF5 file") == true)
    }

    @Test func truncatedFileIsMalformedWithHDF5sReason() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: FormatFixtures.path("keras.weights.h5")))
        let path = folder + "/truncated.h5"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        let error = expectTaskVectorError(.malformed) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.file == path)
        #expect(error?.message.contains("H5Fopen failed: truncated file") == true, "\(String(describing: error))")
    }

    @Test func refusesDatasetDeclaringFarMoreBytesThanItStores() {
        let path = FormatFixtures.path("huge_unwritten.h5")
        let error = expectTaskVectorError(.malformed) { _ = try HDF5Reader.read(path: path) }
        #expect(error?.tensor == "huge")
        #expect(error?.message.contains("stores only 0 bytes") == true)
    }

    // MARK: - Writing

    /// One tensor of every dtype the writer accepts, plus a scalar, an empty tensor and deep names.
    static func sampleTensors() -> [LoadedTensor] {
        func tensor<T: FixedWidthInteger>(_ name: String, _ dtype: DType, _ shape: [Int], bits: [T]) -> LoadedTensor {
            var bytes: [UInt8] = []
            for b in bits { bytes.appendLE(b) }
            return LoadedTensor(name: name, dtype: dtype, shape: shape, data: TensorData(dtype: dtype, copying: bytes))
        }
        let f32: [UInt32] = [1.5, -0.0, .infinity, -3.25, .leastNonzeroMagnitude, .greatestFiniteMagnitude].map {
            Float($0).bitPattern
        }
        return [
            tensor("layers.dense.kernel:0", .f32, [2, 3], bits: f32),
            tensor("layers.dense.bias", .f64, [2], bits: [Double.pi.bitPattern, (-1e300).bitPattern]),
            tensor("half", .f16, [3], bits: [UInt16(0x3C00), 0xFBFF, 0x0001]),
            tensor("brain", .bf16, [2], bits: [UInt16(0x3F80), 0xC049]),
            tensor("ints.i8", .i8, [2], bits: [Int8.min, Int8.max]),
            tensor("ints.u8", .u8, [2], bits: [UInt8.min, UInt8.max]),
            tensor("ints.i16", .i16, [2], bits: [Int16.min, Int16.max]),
            tensor("ints.u16", .u16, [2], bits: [UInt16.min, UInt16.max]),
            tensor("ints.i32", .i32, [2], bits: [Int32.min, Int32.max]),
            tensor("ints.u32", .u32, [2], bits: [UInt32.min, UInt32.max]),
            tensor("ints.i64", .i64, [2], bits: [Int64.min, Int64.max]),
            tensor("ints.u64", .u64, [2], bits: [UInt64.min, UInt64.max]),
            tensor("scalar", .f32, [], bits: [Float(7).bitPattern]),
            tensor("empty", .f32, [0, 5], bits: [UInt32]()),
        ]
    }

    @Test func writeThenReadRoundTripsValuesAndWidensBF16ToF32() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.h5"
        let written = Self.sampleTensors()
        try HDF5Writer.write(written, to: path, overwrite: false)
        let read = try HDF5Reader.read(path: path)
        #expect(Set(read.map(\.name)) == Set(written.map(\.name)))
        for original in written {
            guard let back = read.first(where: { $0.name == original.name }) else { continue }
            #expect(back.shape == original.shape, "\(original.name)")
            if original.dtype == .bf16 {
                #expect(back.dtype == .f32)
            } else {
                #expect(back.dtype == original.dtype, "\(original.name)")
                #expect(Array(back.data.bytes) == Array(original.data.bytes), "\(original.name)")
            }
            let same = zip(exactValues(back), exactValues(original)).allSatisfy { sameValue($0, $1) }
            #expect(same, "\(original.name)")
        }
        // Only the destination remains: the temporary file was renamed into place.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["out.h5"])
    }

    @Test func writerRespectsOverwrite() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.h5"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        let tensors = Array(Self.sampleTensors().prefix(1))
        _ = expectTaskVectorError(.io) { try HDF5Writer.write(tensors, to: path, overwrite: false) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
        try HDF5Writer.write(tensors, to: path, overwrite: true)
        #expect(try HDF5Reader.read(path: path).map(\.name) == ["layers.dense.kernel:0"])
    }

    @Test(arguments: [
        (["a.b", "a.b.c"], "is both a tensor and the group of another tensor"),
        (["a..b"], "must be non-empty"),
        ([".a"], "must be non-empty"),
        (["a/b"], "free of '/'"),
        (["x", "x"], "appears twice"),
    ])
    func writerRefusesNamesHDF5CannotHold(names: [String], message: String) throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tensors = names.map {
            LoadedTensor(name: $0, dtype: .f32, shape: [1], data: TensorData(dtype: .f32, copying: [0, 0, 128, 63]))
        }
        do {
            try HDF5Writer.write(tensors, to: folder + "/out.h5", overwrite: false)
            Issue.record("names \(names) were accepted")
        } catch let error as TaskVectorError {
            #expect(error.message.contains(message), "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    @Test func writerRefusesBoolAndByteCountMismatch() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let flags = LoadedTensor(
            name: "flags", dtype: .bool, shape: [2], data: TensorData(dtype: .bool, copying: [0, 1]))
        _ = expectTaskVectorError(.unsupported) {
            try HDF5Writer.write([flags], to: folder + "/a.h5", overwrite: false)
        }
        let short = LoadedTensor(
            name: "w", dtype: .f32, shape: [2], data: TensorData(dtype: .f32, copying: [0, 0, 0, 0]))
        let error = expectTaskVectorError(.mismatch) {
            try HDF5Writer.write([short], to: folder + "/b.h5", overwrite: false)
        }
        #expect(error?.tensor == "w")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
    }

    /// The writer's output read by h5py (an independent HDF5 reader with its own bundled libhdf5).
    @Test(.requiresPython("h5py", install: "scripts/bootstrap.sh installs it"))
    func h5pyReadsWriterOutputWithTheSameValues() throws {
        let folder = try FormatFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/out.h5"
        let written = Self.sampleTensors()
        try HDF5Writer.write(written, to: path, overwrite: false)
        let script = """
            import h5py, json, sys
            out = {}
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    a = obj[()]
                    flat = a.reshape(-1).tolist() if a.ndim else [a.item()]
                    out[name.replace('/', '.')] = {"dtype": a.dtype.str, "shape": list(a.shape),
                        "values": [v if not isinstance(v, float) or v == v and abs(v) != float('inf')
                                   else ('nan' if v != v else ('inf' if v > 0 else '-inf')) for v in flat]}
            with h5py.File(sys.argv[1], 'r') as f:
                f.visititems(visit)
            json.dump(out, sys.stdout)
            """
        let output = try Python.output(script, arguments: [path])
        let fromH5py = try JSONDecoder().decode([String: ExpectedTensor].self, from: output)
        let numpyType: [DType: String] = [
            .f32: "<f4", .f64: "<f8", .f16: "<f2", .bf16: "<f4", .i8: "|i1", .u8: "|u1", .i16: "<i2", .u16: "<u2",
            .i32: "<i4", .u32: "<u4", .i64: "<i8", .u64: "<u8",
        ]
        #expect(Set(fromH5py.keys) == Set(written.map(\.name)))
        for tensor in written {
            guard let seen = fromH5py[tensor.name] else { continue }
            #expect(seen.dtype == numpyType[tensor.dtype], "\(tensor.name)")
            #expect(seen.shape == tensor.shape, "\(tensor.name)")
            let same = zip(exactValues(tensor), seen.values ?? []).allSatisfy { sameValue($0, $1) }
            #expect(same && seen.values?.count == tensor.data.count, "\(tensor.name): \(seen.values ?? [])")
        }
    }
}
