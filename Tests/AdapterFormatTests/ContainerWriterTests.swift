@testable import AdapterFormat
import Foundation
import TaskVector
import Testing

/// ``ContainerWriter`` refuses, with a ``FormatError`` and before committing anything, what a reader
/// would refuse: a library caller's mistake (an index is Codable, so any value can reach it) never traps
/// and never leaves a container no one can open.
@Suite struct ContainerWriterTests {
    static func entry(_ name: String, shape: [Int] = [2], encoding: Int = 0, sigma: Double? = nil) -> ContainerIndex.Tensor {
        ContainerIndex.Tensor(
            name: name, file: "model.safetensors", dtype: .f32, shape: shape, role: .exact, initRule: .zero, note: nil,
            encoding: encoding, count: shape.reduce(1, *), kept: shape.reduce(1, *), nonzero: 0, scaleBits: 0, scale: 0,
            sigma: sigma, alpha: nil, offset: 0, length: 0, rawLength: 0, xxh64: "")
    }

    static let template = ContainerIndex(
        tool: "test", inputKind: "residual", peftType: nil, sources: [],
        compression: .init(method: "prune", scope: "tensor", density: 50, alphaRequested: "auto"),
        fileMetadata: [:], files: [], tensors: [])

    func raw(_ values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for v in values { out.appendLE(v.bitPattern) }
        return out
    }

    /// Writes `a` and then `second` (when given) into memory and finishes with `template`.
    func write(_ second: ContainerIndex.Tensor?, template: ContainerIndex = template, file: String? = nil) throws -> MemoryByteSink {
        let sink = MemoryByteSink()
        let w = try ContainerWriter(output: sink, zstdLevel: 1)
        if let file { try w.addFile(name: file, bytes: [1, 2]) }
        try raw([1, 2]).withUnsafeBytes { try w.addTensor(Self.entry("a"), raw: $0) }
        if let second { try raw([3, 4]).withUnsafeBytes { try w.addTensor(second, raw: $0) } }
        try w.finish(index: template)
        return sink
    }

    @Test func aValidContainerReadsBack() throws {
        let sink = try write(Self.entry("b"))
        #expect(try ContainerReader(name: "w", contents: sink.bytes).index.tensors.map(\.name) == ["a", "b"])
    }

    @Test func whatAReaderWouldRefuseIsRefusedWhenWritten() throws {
        var badAlpha = Self.template
        badAlpha.compression.alphaRequested = "lots"
        var badDensity = Self.template
        badDensity.compression.density = .nan
        let cases: [(String, () throws -> MemoryByteSink)] = [
            ("out of order", { try write(Self.entry("0")) }),
            ("duplicate name", { try write(Self.entry("a")) }),
            ("negative dimension", { try write(Self.entry("b", shape: [-1])) }),
            ("negative encoding", { try write(Self.entry("b", encoding: -3)) }),
            ("NaN σ", { try write(Self.entry("b", sigma: .nan)) }),
            ("α that is no number", { try write(nil, template: badAlpha) }),
            ("NaN density", { try write(nil, template: badDensity) }),
            ("file name with a slash", { try write(nil, file: "../x") }),
        ]
        for (what, attempt) in cases {
            #expect(throws: FormatError.self, "\(what)") { _ = try attempt() }
        }
    }
}
