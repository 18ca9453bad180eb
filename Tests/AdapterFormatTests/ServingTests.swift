@testable import AdapterFormat
import Dispatch
import Fixtures
import Foundation
import Quantize
import TaskVector
import Testing

@Suite struct ServingTests {
    func container(_ fixture: String, density: Double = 10) throws -> String {
        let dir = scratchDirectory("serve")
        let input = try TaskVectorInput.load(path: Fixtures.path(fixture))
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(density)), to: AtomicFileWriter(path: dir + "/c.cpeft"))
        return dir + "/c.cpeft"
    }

    func decode(_ r: ContainerReader, _ t: ContainerIndex.Tensor, as dtype: DType) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: t.count * dtype.byteSize)
        try out.withUnsafeMutableBytes { try r.decode(t, as: dtype, into: $0) }
        return out
    }

    @Test func decodeIntoCallerBuffersMatchesDecompressedFile() throws {
        let path = try container("lora-gpt2-bf16")
        let reader = try ContainerReader(path: path)
        let dir = scratchDirectory("serve-out")
        _ = try AdapterDecompressor.decompress(reader, to: dir + "/o")
        let restored = try SafeTensorsFile(path: dir + "/o/adapter_model.safetensors")
        for t in reader.index.tensors {
            #expect(try decode(reader, t, as: .bf16) == Array(restored.bytes(of: restored.info(t.name)!)), "\(t.name)")
            let f32 = try decode(reader, t, as: .f32)
            let f16 = try decode(reader, t, as: .f16)
            for i in 0..<t.count {
                let v = f32.withUnsafeBytes { $0.load(fromByteOffset: i * 4, as: Float.self) }
                let h = f16.withUnsafeBytes { $0.load(fromByteOffset: i * 2, as: UInt16.self) }
                #expect(h == FloatConversion.f16(from: v))
            }
        }
    }

    @Test func decodingOneTensorNeverReadsAnotherTensorsPayload() throws {
        let path = try container("lora-bert-seqcls")
        let reader = try ContainerReader(path: path)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let target = reader.index.tensors[2]
        // Destroy every other payload; the index is intact, so the file still opens.
        for t in reader.index.tensors where t.name != target.name {
            for i in t.offset..<(t.offset + t.length) { bytes[i] = 0xA5 }
        }
        let damaged = try ContainerReader(name: "damaged.cpeft", contents: bytes)
        #expect(try decode(damaged, target, as: .f32) == (try decode(reader, target, as: .f32)))
        #expect(throws: FormatError.self) { try decode(damaged, damaged.index.tensors[3], as: .f32) }
    }

    @Test func fileTruncatedUnderAnOpenReaderIsAnIOErrorNamingIt() throws {
        let path = try container("lora-bert-seqcls")
        let reader = try ContainerReader(path: path)
        let last = try #require(reader.index.tensors.max { $0.offset < $1.offset })
        let before = try decode(reader, last, as: .f32)
        // Cut the file inside the last payload: a mapped reader would die of SIGBUS here.
        #expect(truncate(path, off_t(last.offset + last.length / 2)) == 0)
        #expect { try decode(reader, last, as: .f32) } throws: { error in
            let e = error as? FormatError
            return e?.code == .io && e?.file == path && e?.tensor == last.name && e?.message.contains("changed while open") == true
        }
        // A payload that still lies inside the shorter file reads as before.
        let first = try #require(reader.index.tensors.min { $0.offset < $1.offset })
        #expect(try decode(reader, first, as: .f32).count == first.count * 4)
        #expect(before.count == last.count * 4)
    }

    @Test func fileReplacedByRenameKeepsDecodingTheOldContents() throws {
        let path = try container("lora-bert-seqcls", density: 10)
        let other = try container("lora-bert-seqcls", density: 30)
        let reader = try ContainerReader(path: path)
        let expected = try reader.index.tensors.map { try decode(reader, $0, as: .bf16) }
        #expect(rename(other, path) == 0)
        #expect(try reader.index.tensors.map { try decode(reader, $0, as: .bf16) } == expected)
        let reopened = try ContainerReader(path: path)
        #expect(try reopened.index.tensors.map { try decode(reopened, $0, as: .bf16) } != expected)
    }

    @Test func concurrentDecodesEqualSerialDecodes() throws {
        let reader = try ContainerReader(path: try container("residual.safetensors"))
        let floats = reader.index.tensors.filter { $0.dtype.isFloatingPoint }
        let serial = try floats.map { try decode(reader, $0, as: .f32) }
        final class Results: @unchecked Sendable {
            var values: [[UInt8]?]
            let lock = NSLock()
            init(_ n: Int) { values = Array(repeating: nil, count: n) }
        }
        let results = Results(floats.count * 8)
        DispatchQueue.concurrentPerform(iterations: floats.count * 8) { i in
            let t = floats[i % floats.count]
            let out = try? decode(reader, t, as: .f32)
            results.lock.lock()
            results.values[i] = out
            results.lock.unlock()
        }
        for i in 0..<(floats.count * 8) { #expect(results.values[i] == serial[i % floats.count]) }
    }

    @Test func applyAddsTheResidualInPlaceOnlyAtKeptPositions() throws {
        let reader = try ContainerReader(path: try container("ia3-gpt2-f16"))
        for t in reader.index.tensors where t.role == .residual {
            // The (IA)³ vector is init 1 + τ: applying τ to a buffer of ones gives the decoded vector.
            var ones = [Float](repeating: 1, count: t.count)
            try ones.withUnsafeMutableBytes { try reader.apply(t, to: $0, as: .f32) }
            let decoded = try decode(reader, t, as: .f32)
            let expected = decoded.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(ones == expected, "\(t.name)")
            var base = [Float](repeating: 0.5, count: t.count)
            try base.withUnsafeMutableBytes { try reader.apply(t, to: $0, as: .f32, factor: -2) }
            for i in 0..<t.count { #expect(base[i] == 0.5 - 2 * (expected[i] - 1)) }
        }
    }

    /// Tensors whose mask zstd packs smaller than the gap coder (rows of a LoRA B kept whole or not at
    /// all) are stored as encoding 1 and decode through their own fast path: the same values as the
    /// general path (`decodeValues`, rounded once), in every output type, including the last partial
    /// mask byte and sign bits read to the very end.
    @Test func ternaryBitmapTensorsDecodeAsTheGeneralPath() throws {
        var g = GapSpecGenerator(seed: 23)
        var tensors: [SourceTensor] = []
        var total = 0
        for (name, rows, width) in [("b.weight", 4096, 16), ("odd.weight", 1001, 13), ("small.weight", 37, 7)] {
            let plan = GapSpecGenerator.Plan(shape: [rows, width]) { i in (i / width) % 5 < 2 ? 0.9 : 0.01 }
            let (bytes, _) = g.values(plan)
            total += plan.count
            tensors.append(SourceTensor(name: name, dtype: .f32, shape: plan.shape, fileName: "x.safetensors", role: .residual,
                                        initRule: .zero, data: TensorData(dtype: .f32, copying: bytes)))
        }
        let input = TaskVectorInput(kind: .residual, tensors: tensors, fileMetadata: [:], auxiliaryFiles: [], adapterConfig: nil,
                                    sourceFiles: [], inputBytes: total * 4)
        let path = scratchDirectory("serve-bitmap") + "/c.cpeft"
        _ = try AdapterCompressor.compress(input, options: .init(density: .percent(30)), to: AtomicFileWriter(path: path))
        let reader = try ContainerReader(path: path)
        let bitmaps = reader.index.tensors.filter { $0.encoding == PayloadEncoding.ternaryBitmap.rawValue }
        #expect(bitmaps.count >= 2, "encodings: \(reader.index.tensors.map(\.encoding))")
        for t in bitmaps {
            var values = [Float](repeating: .nan, count: t.count)
            try values.withUnsafeMutableBufferPointer { try reader.decodeValues(t, base: nil, into: $0) }
            #expect(values.contains { $0 < 0 } && values.contains { $0 > 0 } && values.contains(0), "\(t.name)")
            for dtype in [DType.f32, .f16, .bf16] {
                var expected: [UInt8] = []
                for v in values {
                    switch dtype {
                    case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { expected += $0 }
                    case .f16: withUnsafeBytes(of: FloatConversion.f16(from: v).littleEndian) { expected += $0 }
                    default: withUnsafeBytes(of: FloatConversion.bf16(from: v).littleEndian) { expected += $0 }
                    }
                }
                #expect(try decode(reader, t, as: dtype) == expected, "\(t.name) as \(dtype)")
            }
        }
    }

    /// The checks the encoding-1 fast path makes on a decoded payload before it writes a value.
    @Test func corruptBitmapPayloadsAreRefused() {
        func problem(_ raw: [UInt8]) -> String? {
            raw.withUnsafeBytes {
                switch PayloadEncoding.bitmap($0, count: 13, nonzero: 3) {
                case .success: nil
                case .failure(let p): p.message
                }
            }
        }
        #expect(problem([0b0000_0101, 0b0001_0000, 0b0000_0010]) == nil)
        #expect(problem([0b0000_0111, 0b0001_0000, 0b0000_0010])?.contains("4 set bits") == true)
        #expect(problem([0b0000_0011, 0b0010_0000, 0b0000_0010])?.contains("past the last value") == true)
        #expect(problem([0b0000_0101, 0b0001_0000, 0b0000_1010])?.contains("sign bits set past") == true)
        #expect(problem([0b0000_0101])?.contains("shorter than its mask") == true)
        #expect(problem([0b0000_0101, 0b0001_0000, 0b0000_0010, 0])?.contains("sign bytes 2") == true)
        #expect(problem([0b0000_0101, 0b0001_0000])?.contains("sign bytes 0") == true)
    }

    @Test func badArgumentsGetClearErrors() throws {
        let reader = try ContainerReader(path: try container("residual.safetensors"))
        let t = reader.index.tensors.first { $0.dtype == .f32 && $0.count > 1 }!
        var small = [UInt8](repeating: 0, count: 3)
        #expect { try small.withUnsafeMutableBytes { try reader.decode(t, as: .f32, into: $0) } } throws: {
            ($0 as? FormatError)?.message.contains("needs \(t.count * 4)") == true
        }
        var buffer = [UInt8](repeating: 0, count: t.count * 8)
        #expect(throws: FormatError.self) { try buffer.withUnsafeMutableBytes { try reader.decode(t, as: .f64, into: $0) } }
        let ints = reader.index.tensors.first { $0.dtype == .i64 }!
        var b2 = [UInt8](repeating: 0, count: ints.count * 4)
        #expect(throws: FormatError.self) { try b2.withUnsafeMutableBytes { try reader.decode(ints, as: .f32, into: $0) } }
    }
}

@Suite struct ServingMetadataTests {
    @Test func storedAdapterConfigComesBackByteForByte() throws {
        let reader = try ContainerReader(path: Fixtures.path("containers/lora-bert-seqcls-v1.0.cpeft"))
        let config = try #require(try reader.adapterConfig())
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("lora-bert-seqcls/adapter_config.json"))))
        #expect(config == original)
        #expect(reader.index.peftType == "LORA")
        let residual = try ContainerReader(path: Fixtures.path("containers/ia3-gpt2-f16-v1.0.cpeft"))
        #expect(try residual.adapterConfig() != nil)
    }
}
