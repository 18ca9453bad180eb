import Fixtures
import Foundation
import TaskVector
import Testing

/// Builds a safetensors file by hand so tests can lie in every field.
func rawSafetensors(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    var out: [UInt8] = []
    let h = Array(header.utf8)
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out += $0 }
    return out + h + data
}

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("compeft-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

@Suite struct SafeTensorsTests {
    func open(_ bytes: [UInt8]) throws -> SafeTensorsFile {
        try SafeTensorsFile(file: MappedFile(path: "test.safetensors", contents: bytes))
    }

    func expectMalformed(_ bytes: [UInt8], mentions: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(sourceLocation: sourceLocation) { try open(bytes) } throws: { error in
            let e = error as? TaskVectorError
            return e?.file == "test.safetensors" && (e?.description.contains(mentions) ?? false)
        }
    }

    @Test func readsTensorsMetadataAndEdgeShapes() throws {
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"s":{"dtype":"F16","shape":[],"data_offsets":[8,10]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[10,10]},"i":{"dtype":"I64","shape":[1],"data_offsets":[10,18]}}"#
        var data: [UInt8] = []
        for v: Float in [1.5, -2] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        data += [0x00, 0x3C]  // f16 1.0
        withUnsafeBytes(of: Int64(-7).littleEndian) { data += $0 }
        let f = try open(rawSafetensors(header: header, data: data))
        #expect(f.metadata == ["format": "pt"])
        #expect(f.tensors.map(\.name).sorted() == ["a", "e", "i", "s"])
        #expect(f.info("s")?.shape == [] && f.info("s")?.count == 1)
        #expect(f.info("e")?.count == 0)
        var a = [Float](repeating: 0, count: 2)
        a.withUnsafeMutableBufferPointer { f.data(of: f.info("a")!).loadFloats(from: 0, into: $0) }
        #expect(a == [1.5, -2])
        var s = [Float](repeating: 0, count: 1)
        s.withUnsafeMutableBufferPointer { f.data(of: f.info("s")!).loadFloats(from: 0, into: $0) }
        #expect(s == [1])
    }

    @Test func readerRejectsHeaderLongerThanFile() {
        expectMalformed(rawSafetensors(header: "{}", data: [], declaredLength: 1000), mentions: "past the end")
    }

    @Test func readerRejectsHeaderOverTheLimitBeforeAllocating() {
        expectMalformed(rawSafetensors(header: "{}", data: [], declaredLength: 200_000_000), mentions: "100 MB")
        expectMalformed(rawSafetensors(header: "{}", data: [], declaredLength: .max), mentions: "100 MB")
    }

    @Test func readerRejectsShortFilesAndNonJSON() {
        expectMalformed([1, 2, 3], mentions: "too short")
        expectMalformed(rawSafetensors(header: "{not json", data: []), mentions: "JSON")
        expectMalformed(rawSafetensors(header: "[1,2]   ", data: []), mentions: "'{'")
    }

    @Test func readerRejectsLyingOffsetsAndCounts() {
        let cases: [(String, Int, String)] = [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, 8, "outside"),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, "needs 12"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12, "gap"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "overlaps"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 8, "cover"),
            (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, "non-negative"),
            (#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, 4, "too large"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, 8, "outside"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.5,4]}}"#, 4, "two integers"),
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[true,4]}}"#, 4, "two integers"),
            (#"{"a":{"dtype":"F32","shape":[1]}}"#, 4, "two integers"),
            (#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, 4, "unsupported dtype"),
            (#"{"__metadata__":{"k":1}}"#, 0, "not a string"),
        ]
        for (header, dataBytes, mention) in cases {
            expectMalformed(rawSafetensors(header: header, data: [UInt8](repeating: 0, count: dataBytes)), mentions: mention)
        }
    }

    @Test func writerOutputRoundTripsAndIsCanonical() throws {
        let path = temporaryPath("roundtrip.safetensors")
        let values: [Float] = [1, -2, 3.5]
        let entries = [
            SafeTensorsWriter.Entry(name: "z.f32", dtype: .f32, shape: [3]) { sink in
                try values.withUnsafeBytes { try sink($0) }
            },
            SafeTensorsWriter.Entry(name: "a.i64", dtype: .i64, shape: [1]) { sink in
                try withUnsafeBytes(of: Int64(5).littleEndian) { try sink($0) }
            },
            SafeTensorsWriter.Entry(name: "q\"uote\n", dtype: .f16, shape: []) { sink in
                try [UInt8(0), 0x3C].withUnsafeBytes { try sink($0) }
            },
        ]
        let w = try AtomicFileWriter(path: path, overwrite: true)
        try SafeTensorsWriter.write(entries, metadata: ["format": "pt"], to: w)
        try w.commit()
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt"])
        #expect(f.dataStart % 8 == 0)
        // Reference layout: widest dtype first, then by name.
        #expect(f.tensors.map(\.name) == ["a.i64", "z.f32", "q\"uote\n"])
    }

    @Test func writerRefusesAProducerThatLies() throws {
        let path = temporaryPath("lying.safetensors")
        let w = try AtomicFileWriter(path: path, overwrite: true)
        #expect(throws: TaskVectorError.self) {
            try SafeTensorsWriter.write([SafeTensorsWriter.Entry(name: "a", dtype: .f32, shape: [2]) { sink in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try sink($0) }
            }], to: w)
        }
        w.abandon()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func shardedCheckpointReadsLikeTheSingleFile() throws {
        let sharded = try Checkpoint(path: Fixtures.path("full-ft"))
        let single = try Checkpoint(path: Fixtures.path("full-ft-single/model.safetensors"))
        #expect(sharded.fileNames.count == 3)
        #expect(sharded.names == single.names)
        for name in single.names {
            #expect(Array(sharded.data(name)!.bytes) == Array(single.data(name)!.bytes), "\(name)")
        }
    }

    @Test func inputsAreClassifiedByPeftType() throws {
        let lora = try TaskVectorInput.load(path: Fixtures.path("lora-bert-seqcls"))
        #expect(lora.kind == .peftAdapter)
        for t in lora.tensors {
            #expect(t.role == (t.name.contains("lora_") ? .residual : .exact), "\(t.name)")
            #expect(t.initRule == .zero)
        }
        let ia3 = try TaskVectorInput.load(path: Fixtures.path("ia3-bert-seqcls"))
        #expect(ia3.tensors.filter { $0.role == .residual }.allSatisfy { $0.initRule == .one && $0.name.contains("ia3_") })
        #expect(ia3.tensors.contains { $0.role == .exact && $0.name.contains("classifier") })
        let all = try TaskVectorInput.load(path: Fixtures.path("ia3-bert-seqcls"), options: .init(compressAll: true))
        #expect(all.tensors.allSatisfy { $0.role == .residual && $0.initRule == .one })
        let residual = try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"))
        #expect(residual.tensors.first { $0.name == "step_counter" }?.role == .exact)
        #expect(residual.tensors.map(\.name) == residual.tensors.map(\.name).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
    }

    @Test func fullFineTuneMismatchesNameTheTensor() throws {
        // The residual file against the tiny-bert base: names differ.
        #expect {
            try TaskVectorInput.load(path: Fixtures.path("residual.safetensors"), base: Fixtures.path("tiny-bert"))
        } throws: { ($0 as? TaskVectorError)?.tensor != nil && ($0 as? TaskVectorError)?.code == .mismatch }
        let ft = try TaskVectorInput.load(path: Fixtures.path("full-ft"), base: Fixtures.path("tiny-bert"))
        #expect(ft.kind == .fullFineTune && ft.tensors.allSatisfy { $0.initRule == .base || $0.role == .exact })
    }
}
