@testable import AdapterFormat
import Foundation
import TaskVector
import Testing

/// The format 1.1 index limits of the README's "What compeft refuses" table, each from just inside (not
/// refused by that limit) to just outside (refused naming it). Inside a count, the body holds as many
/// bytes as the count needs to pass the reader's "no more items than bytes" check, then ends: the error is
/// the truncation, not the limit, which is what these tests look at.
@Suite struct LimitTests {
    /// An index body: the container fields, then `build`.
    private func body(_ build: (inout BinaryIndexWriter) -> Void) -> [UInt8] { indexBody(build) }

    /// The error the body gets (there always is one: none of these bodies is complete).
    private func error(_ bytes: [UInt8]) -> String {
        do {
            _ = try ContainerIndex.decodeBinary(bytes, payloadArea: ContainerLayout.preambleSize..<ContainerLayout.preambleSize)
            return "accepted"
        } catch {
            return error.message
        }
    }

    /// `count` items of a list whose limit is `limit`: inside, the limit is not what refuses it.
    private func expectLimit(_ limit: Int, _ what: String, _ build: (inout BinaryIndexWriter, Int) -> Void) {
        let inside = error(body { build(&$0, limit) })
        #expect(!inside.contains("exceeds \(limit)"), "\(what) at the limit: \(inside)")
        let outside = error(body { build(&$0, limit + 1) })
        #expect(outside.contains("\(what) \(limit + 1) exceeds \(limit)"), "\(what) past the limit: \(outside)")
    }

    @Test func indexTensorCountLimit() {
        #expect(IndexFields.Limit.tensors == 1 << 20)
        expectLimit(IndexFields.Limit.tensors, "the number of tensors") { w, n in
            w.uvarint(1); w.string("m"); w.uvarint(0); w.uvarint(0); w.uvarint(n); w.raw([UInt8](repeating: 0, count: n))
        }
    }

    @Test func indexFileLimits() {
        #expect(IndexFields.Limit.files == 1 << 16 && IndexFields.Limit.metadataPairs == 1 << 16)
        expectLimit(IndexFields.Limit.files, "the number of output files") { w, n in
            w.uvarint(n); w.raw([UInt8](repeating: 0, count: n))
        }
        expectLimit(IndexFields.Limit.files, "the number of verbatim files") { w, n in
            w.uvarint(1); w.string("m"); w.uvarint(0); w.uvarint(n); w.raw([UInt8](repeating: 0, count: n))
        }
        expectLimit(IndexFields.Limit.metadataPairs, "the metadata count of 'm'") { w, n in
            w.uvarint(1); w.string("m"); w.uvarint(n); w.raw([UInt8](repeating: 0, count: n))
        }
    }

    @Test func indexRankAndNameLimits() {
        #expect(IndexFields.Limit.rank == 64 && IndexFields.Limit.nameLength == 1 << 16)
        // Rank: a tensor entry up to its shape.
        expectLimit(IndexFields.Limit.rank, "the rank of 't'") { w, rank in
            w.uvarint(1); w.string("m"); w.uvarint(0); w.uvarint(0); w.uvarint(1); w.uvarint(0)
            w.string("t"); w.u8(0); w.u8(11); w.uvarint(rank); w.raw([UInt8](repeating: 1, count: rank))
        }
        // A name of 2^16 bytes is read; one byte more is refused.
        let limit = IndexFields.Limit.nameLength
        let inside = error(body { w in
            w.uvarint(1); w.string("m"); w.uvarint(0); w.uvarint(0); w.uvarint(1); w.uvarint(0)
            w.string(String(repeating: "n", count: limit))
        })
        #expect(!inside.contains("exceeds"), "\(inside)")
        let outside = error(body { w in
            w.uvarint(1); w.string("m"); w.uvarint(0); w.uvarint(0); w.uvarint(1); w.uvarint(0)
            w.string(String(repeating: "n", count: limit + 1))
        })
        #expect(outside.contains("exceeds \(limit)"), "\(outside)")
    }

    @Test func indexBodyLimit() {
        // A zstd frame header declaring a content size, then one RLE block: the declared size is checked
        // against 2^30 before anything is allocated.
        func frame(declaring size: UInt64) -> [UInt8] {
            var f: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE0]  // magic; single segment, 8-byte content size
            f += (0..<8).map { UInt8(truncatingIfNeeded: size >> (8 * UInt64($0))) }
            f += [0x03, 0x00, 0x02, 0x00]  // last block, RLE, 1 << 17 bytes of 0
            return [IndexCodec.zstd.rawValue] + f
        }
        func error(_ stored: [UInt8]) -> String {
            do {
                _ = try IndexCodec.load(stored)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(IndexCodec.maxBodyLength == 1 << 30)
        let inside = error(frame(declaring: UInt64(IndexCodec.maxBodyLength)))
        #expect(!inside.contains("more than"), "\(inside)")
        let outside = error(frame(declaring: UInt64(IndexCodec.maxBodyLength) + 1))
        #expect(outside.contains("declares 1073741825 bytes, more than 1073741824"), "\(outside)")
    }

    @Test func payloadExpansionLimit() {
        // 32768 f32 values = 131072 raw bytes: 2 stored bytes may claim them (2^16 each), 1 may not.
        func error(storedLength: Int) -> String {
            let t = ContainerIndex.Tensor(
                name: "t", file: "m.safetensors", dtype: .f32, shape: [32768], role: .exact, initRule: .zero, note: nil,
                encoding: PayloadEncoding.raw.rawValue, count: 32768, kept: 32768, nonzero: 0, scaleBits: 0, scale: 0,
                sigma: nil, alpha: nil, offset: 12, length: storedLength, rawLength: 131072, xxh64: "00000000")
            let index = ContainerIndex(
                tool: "t", inputKind: "residual", peftType: nil, sources: [],
                compression: .init(method: "compeft", scope: "global", density: 10, alphaRequested: "auto"),
                fileMetadata: [:], files: [], tensors: [t])
            do {
                try ContainerReader.validate(index, payloadArea: 12..<14, path: "limit.cpeft")
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(Zstd.maxExpansion == 1 << 16)
        #expect(error(storedLength: 2) == "accepted")
        #expect(error(storedLength: 1).contains("claims 131072 decoded bytes from 1 stored bytes"), "\(error(storedLength: 1))")
    }
}

/// A format 1.1 index body (docs/FORMAT.md): minimal container fields (tool, input kind, method, scope,
/// density 10, α 0, no optional fields), then what `build` writes.
func indexBody(_ build: (inout BinaryIndexWriter) -> Void) -> [UInt8] {
    var w = BinaryIndexWriter()
    for s in ["w", "residual", "compeft", "tensor"] { w.string(s) }
    w.f64(10)
    w.f64(0)
    w.u8(0)
    w.endFields()
    build(&w)
    return w.bytes
}
