@testable import AdapterFormat
import Foundation
import TaskVector
import Testing

/// A format 1.1 container written field by field from docs/FORMAT.md ("Index, format 1.1"), not by
/// ``ContainerWriter``, with hooks for what a newer writer might add: two raw F32 tensors `a` ([4]) and
/// `b` ([2, 2]) in `model.safetensors`, and a verbatim file `notes.txt` stored inside the index.
struct HandBuiltContainer {
    var minor: UInt16 = 1
    var codec: UInt8 = 0
    var containerFields: [(Int, [UInt8])] = []
    var fileFields: [(Int, [UInt8])] = []
    var tensorFields: [(Int, [UInt8])] = []  // on `b`
    var flagsOfB: UInt8 = 0
    var dtypeOfB: UInt8 = 11  // F32
    var encodingOfB = 0

    static let a: [Float] = [1, -2, 3.5, 0]
    static let b: [Float] = [0.25, 8, -1, 2]
    static let notes = Array("hand-built".utf8)

    static func payload(_ values: [Float]) throws -> [UInt8] {
        var raw: [UInt8] = []
        for v in values { raw.appendLE(v.bitPattern) }
        return try raw.withUnsafeBytes { try Zstd.compress($0, level: 3) }
    }

    func bytes() throws -> [UInt8] {
        let pa = try Self.payload(Self.a)
        let pb = try Self.payload(Self.b)
        var w = BinaryIndexWriter()
        for s in ["hand", "residual", "prune", "tensor"] { w.string(s) }
        w.f64(50)  // density
        w.f64(0)  // α auto
        w.u8(0)  // no group
        for (tag, value) in containerFields { w.field(tag, value) }
        w.endFields()
        w.uvarint(1)  // output files
        w.string("model.safetensors")
        w.uvarint(1)
        w.string("format")
        w.string("pt")
        w.uvarint(1)  // verbatim files
        w.string("notes.txt")
        w.u8(fileFields.isEmpty ? 0 : 0x80)
        w.uvarint(Self.notes.count)
        w.raw(Self.notes)
        if !fileFields.isEmpty {
            for (tag, value) in fileFields { w.field(tag, value) }
            w.endFields()
        }
        w.uvarint(2)  // tensors
        // a: exact (role bit), init zero, F32, [4], raw
        w.uvarint(0)
        w.string("a")
        w.u8(0b100)
        w.u8(11)
        w.uvarint(1)
        w.uvarint(4)
        w.uvarint(0)
        w.uvarint(pa.count)
        w.u32(UInt32(truncatingIfNeeded: XXH64.hash(pa)))
        // b: shares nothing with "a"
        w.uvarint(0)
        w.string("b")
        w.u8(0b100 | flagsOfB | (tensorFields.isEmpty ? 0 : 0x80))
        w.u8(dtypeOfB)
        w.uvarint(2)
        w.uvarint(2)
        w.uvarint(2)
        w.uvarint(encodingOfB)
        if encodingOfB != 0 { w.uvarint(0) }  // nonzero
        w.uvarint(pb.count)
        w.u32(UInt32(truncatingIfNeeded: XXH64.hash(pb)))
        if !tensorFields.isEmpty {
            for (tag, value) in tensorFields { w.field(tag, value) }
            w.endFields()
        }
        var preamble = ContainerLayout.magic
        preamble.appendLE(UInt16(1))
        preamble.appendLE(minor)
        let index = [codec] + w.bytes
        var trailer: [UInt8] = []
        trailer.appendLE(UInt32(index.count))
        var header = preamble
        header.appendLE(UInt32(index.count))
        trailer.appendLE(UInt32(truncatingIfNeeded: XXH64.hash(header)))
        trailer.appendLE(XXH64.hash(index))
        return preamble + pa + pb + index + trailer + Array("CPFT".utf8)
    }

    func open() throws -> ContainerReader {
        try ContainerReader(name: "hand.cpeft", contents: try bytes())
    }
}

/// Format 1.1's rules for what a newer writer may add (docs/FORMAT.md, "Extending format 1.1"):
/// unknown ancillary fields are skipped, unknown critical ones refuse what they belong to, and
/// everything else a reader cannot know is refused by name.
@Suite struct IndexExtensionTests {
    func values(_ r: ContainerReader, _ name: String) throws -> [Float] {
        let t = try #require(r.tensor(named: name))
        var out = [Float](repeating: 0, count: t.count)
        try out.withUnsafeMutableBufferPointer { try r.decodeValues(t, base: nil, into: $0) }
        return out
    }

    @Test func handBuiltContainerReadsAsTheSpecSays() throws {
        let r = try HandBuiltContainer().open()
        #expect(r.majorVersion == 1 && r.minorVersion == 1)
        #expect(r.index.tool == "hand" && r.index.inputKind == "residual" && r.index.compression.scope == "tensor")
        #expect(r.index.sources == ["notes.txt", "model.safetensors"])
        #expect(r.index.fileMetadata == ["model.safetensors": ["format": "pt"]])
        #expect(try r.contents(of: r.index.files[0]) == HandBuiltContainer.notes)
        #expect(try values(r, "a") == HandBuiltContainer.a)
        #expect(try values(r, "b") == HandBuiltContainer.b)
        let a = r.index.tensors[0], b = r.index.tensors[1]
        #expect(a.offset == ContainerLayout.preambleSize && b.offset == a.offset + a.length)
        #expect(a.kept == 4 && a.nonzero == 0 && a.rawLength == 16 && a.role == .exact && b.shape == [2, 2])
    }

    @Test func unknownAncillaryFieldsAreSkipped() throws {
        var c = HandBuiltContainer()
        c.containerFields = [(100, [1, 2, 3])]
        c.fileFields = [(102, [])]
        c.tensorFields = [(104, Array("future".utf8))]
        let r = try c.open()
        #expect(try r.contents(of: r.index.files[0]) == HandBuiltContainer.notes)
        #expect(try values(r, "b") == HandBuiltContainer.b)
    }

    @Test func unknownCriticalContainerFieldRefusesTheContainerByName() throws {
        var c = HandBuiltContainer()
        c.containerFields = [(101, [0])]
        #expect { try c.open() } throws: { error in
            let e = error as? FormatError
            return e?.code == .unsupported && e!.message.contains("container field 101")
        }
    }

    @Test func unknownCriticalTensorFieldRefusesThatTensorOnly() throws {
        var c = HandBuiltContainer()
        c.tensorFields = [(103, [9, 9])]
        let r = try c.open()
        #expect(try values(r, "a") == HandBuiltContainer.a)
        let b = try #require(r.tensor(named: "b"))
        let attempts: [() throws -> Void] = [
            { _ = try r.payload(b) },
            { _ = try values(r, "b") },
            {
                var out = [UInt8](repeating: 0, count: 8)
                try out.withUnsafeMutableBytes { try r.decode(b, as: .bf16, into: $0) }
            },
        ]
        for attempt in attempts {
            #expect { try attempt() } throws: { error in
                let e = error as? FormatError
                return e?.code == .unsupported && e?.tensor == "b" && e!.message.contains("field 103")
            }
        }
    }

    @Test func unknownCriticalFileFieldRefusesThatFile() throws {
        var c = HandBuiltContainer()
        c.fileFields = [(105, [])]
        let r = try c.open()
        #expect { try r.contents(of: r.index.files[0]) } throws: { error in
            (error as? FormatError)?.code == .unsupported && "\(error)".contains("notes.txt")
        }
        #expect(try values(r, "b") == HandBuiltContainer.b)
    }

    @Test func unknownEncodingRefusesThatTensorOnly() throws {
        var c = HandBuiltContainer()
        c.encodingOfB = 9
        let r = try c.open()
        #expect(r.tensor(named: "b")?.rawLength == 0)
        #expect { try r.verify(r.tensor(named: "b")!) } throws: { error in
            (error as? FormatError)?.code == .unsupported && "\(error)".contains("encoding 9")
        }
        try r.verify(r.tensor(named: "a")!)
    }

    @Test(arguments: [
        (HandBuiltContainer(codec: 7), "index codec 7"),
        (HandBuiltContainer(flagsOfB: 0b1000), "flag bits"),
        (HandBuiltContainer(dtypeOfB: 200), "dtype code 200"),
    ])
    func whatANewerWriterMayUseIsRefusedByName(container: HandBuiltContainer, mention: String) throws {
        #expect { try container.open() } throws: { error in
            let e = error as? FormatError
            return e?.code == .unsupported && e!.message.contains(mention)
        }
    }

    @Test func higherMinorVersionIsRead() throws {
        let r = try HandBuiltContainer(minor: 7).open()
        #expect(r.minorVersion == 7)
        #expect(try values(r, "b") == HandBuiltContainer.b)
    }

    @Test func everyCodecReadsTheSameBody() throws {
        let c = HandBuiltContainer()
        let plain = try c.open().index
        for codec in IndexCodec.allCases.dropFirst() {
            // Re-store the same body under another codec and reseal the trailer.
            let bytes = try c.bytes()
            let t = bytes.count - ContainerLayout.trailerSize
            let length = Int(bytes.withUnsafeBytes { $0.readLE(UInt32.self, at: t)! })
            let body = Array(bytes[(t - length + 1)..<t])
            let frame = try body.withUnsafeBytes {
                try Zstd.compress($0, level: 19, dictionary: codec == .zstdDictionary1 ? IndexDictionary.one : nil)
            }
            let index = [codec.rawValue] + frame
            let preamble = Array(bytes[0..<12])
            let resealed = Array(bytes[0..<(t - length)]) + index + ContainerLayout.Trailer.bytes(preamble: preamble, index: index)
            #expect(try ContainerReader(name: "codec.cpeft", contents: resealed).index == plain, "codec \(codec)")
        }
    }
}
