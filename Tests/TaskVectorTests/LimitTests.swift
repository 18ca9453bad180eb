import Foundation
import Testing

@testable import TaskVector

/// Limits of the README's "What compeft refuses" table in the readers, each from just inside (not
/// refused by that limit) to just outside (refused naming it).
@Suite struct LimitTests {
    /// The error a `torch.save` archive holding `pickle` gets, or "accepted".
    private func torchError(_ pickle: [UInt8]) throws -> String {
        var zip: [UInt8] = []
        try writeStoredZip([("archive/data.pkl", pickle), ("archive/version", Array("3\n".utf8))], into: &zip)
        do {
            _ = try TorchBinReader.load(file: MappedFile(path: "limit.bin", contents: zip))
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    private func shortUnicode(_ s: String) -> [UInt8] { [0x8C, UInt8(s.utf8.count)] + Array(s.utf8) }

    @Test func headerLengthLimit() throws {
        let header = Array(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        let file = MappedFile(path: "limit.safetensors", contents: rawSafetensors(header: String(decoding: header, as: UTF8.self), data: [0, 0, 0, 0]))
        #expect(try SafeTensorsFile(file: file, headerLimit: header.count).tensors.count == 1)
        #expect(throws: TaskVectorError.self) { _ = try SafeTensorsFile(file: file, headerLimit: header.count - 1) }
        do {
            _ = try SafeTensorsFile(file: file, headerLimit: header.count - 1)
        } catch {
            #expect("\(error)".contains("header length \(header.count) exceeds the \(header.count - 1)-byte limit"), "\(error)")
        }
        #expect(SafeTensorsFile.maxHeaderLength == 100_000_000)
    }

    @Test func torchNestingLimit() throws {
        // d dicts inside the saved dict: {"a": {"a": … {}}}; the innermost sits at depth d.
        func nested(_ d: Int) -> [UInt8] {
            [0x80, 2] + (0..<d).flatMap { _ in [0x7D] + shortUnicode("a") } + [0x7D] + [UInt8](repeating: 0x73, count: d) + [0x2E]
        }
        let inside = try torchError(nested(TorchBinReader.maxNesting))
        #expect(!inside.contains("nests deeper"), "\(inside)")
        let outside = try torchError(nested(TorchBinReader.maxNesting + 1))
        #expect(outside.contains("nests deeper than 32 levels"), "\(outside)")
    }

    @Test func pickleGlobalNameLimit() throws {
        func global(_ length: Int) -> [UInt8] {
            [0x80, 2, 0x63] + [UInt8](repeating: UInt8(ascii: "m"), count: length) + Array("\nx\n".utf8) + [0x2E]
        }
        let inside = try torchError(global(TorchUnpickler.maxGlobalNameLength))
        #expect(!inside.contains("too long"), "\(inside)")
        let outside = try torchError(global(TorchUnpickler.maxGlobalNameLength + 1))
        #expect(outside.contains("GLOBAL name is too long"), "\(outside)")
    }

    @Test func pickleTupleDepthLimit() throws {
        // {"a": ((…(),…),)} with d tuples.
        func tuples(_ d: Int) -> [UInt8] {
            [0x80, 2, 0x7D] + shortUnicode("a") + [0x29] + [UInt8](repeating: 0x85, count: d - 1) + [0x73, 0x2E]
        }
        let inside = try torchError(tuples(TorchUnpickler.maxTupleDepth))
        #expect(!inside.contains("tuples nest deeper"), "\(inside)")
        let outside = try torchError(tuples(TorchUnpickler.maxTupleDepth + 1))
        #expect(outside.contains("tuples nest deeper than 32 levels"), "\(outside)")
    }

    @Test func pickleMemoLimit() throws {
        // An empty dict memoized n times (MEMOIZE: the next memo slot).
        func memoized(_ n: Int) -> [UInt8] {
            [0x80, 4, 0x7D] + [UInt8](repeating: 0x94, count: n) + [0x2E]
        }
        let inside = try torchError(memoized(TorchUnpickler.maxMemoEntries))
        #expect(!inside.contains("memo exceeds"), "\(inside)")
        let outside = try torchError(memoized(TorchUnpickler.maxMemoEntries + 1))
        #expect(outside.contains("memo exceeds 1048576 entries"), "\(outside)")
    }

    @Test func hdf5RankLimit() throws {
        func error(rank: Int) throws -> String {
            let path = temporaryPath("rank-\(rank).h5")
            let tensor = LoadedTensor(name: "w", dtype: .f32, shape: [Int](repeating: 1, count: rank),
                                      data: TensorData(dtype: .f32, copying: [UInt8](repeating: 0, count: 4)))
            try HDF5Writer.write([tensor], to: path, overwrite: true)
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                _ = try HDF5Reader.read(path: path)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(try error(rank: HDF5Reader.maxRank) == "accepted")
        let outside = try error(rank: HDF5Reader.maxRank + 1)
        #expect(outside.contains("rank 9 exceeds the supported 8"), "\(outside)")
    }
}
