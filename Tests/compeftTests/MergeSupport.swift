@_exported import CompeftTestSupport
import AdapterFormat
import Foundation
import TaskVector
import Testing

/// The tensors of a safetensors file, read back for checks.
struct TensorFile {
    let file: SafeTensorsFile

    init(_ path: String) throws { file = try SafeTensorsFile(path: path) }

    var names: [String] { file.tensors.map(\.name).sorted() }

    func info(_ name: String) throws -> TensorInfo { try #require(file.info(name), "\(file.path) has no tensor \(name)") }

    func floats(_ name: String) throws -> [Float] {
        let data = file.data(of: try info(name))
        return [Float](unsafeUninitializedCapacity: data.count) { out, n in
            data.loadFloats(from: 0, into: out)
            n = data.count
        }
    }

    func bytes(_ name: String) throws -> [UInt8] { Array(file.bytes(of: try info(name))) }
}

/// `values` rounded to `dtype` and widened back: what a file of that dtype holds.
func rounded(_ values: [Float], to dtype: DType) -> [Float] {
    let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * dtype.byteSize, 1), alignment: 16)
    defer { raw.deallocate() }
    values.withUnsafeBufferPointer { FloatEncoding.store($0, as: dtype, into: raw) }
    let data = TensorData(dtype: dtype, bytes: UnsafeRawBufferPointer(rebasing: raw[0..<(values.count * dtype.byteSize)]), owner: nil)
    return [Float](unsafeUninitializedCapacity: values.count) { out, n in
        data.loadFloats(from: 0, into: out)
        n = values.count
    }
}

/// Values equal as numbers (`==`, so −0 equals +0), and the first difference when they are not.
func firstDifference(_ a: [Float], _ b: [Float]) -> String? {
    guard a.count == b.count else { return "\(a.count) values vs \(b.count)" }
    for i in a.indices where !(a[i] == b[i]) { return "index \(i): \(a[i]) vs \(b[i])" }
    return nil
}

/// Writes a variant of a fixture (a safetensors file, or a PEFT folder with its config) whose float
/// tensors go through `edit`: it returns the new shape and values, or nil to drop the tensor.
/// Non-float tensors are copied as they are.
func writeVariant(of input: String, to output: String,
                  config: (inout [String: Any]) -> Void = { _ in },
                  edit: (_ name: String, _ shape: [Int], _ values: [Float]) -> (shape: [Int], values: [Float])?) throws {
    let fm = FileManager.default
    let isFolder = fm.fileExists(atPath: input + "/adapter_config.json")
    let source = isFolder ? input + "/adapter_model.safetensors" : input
    let destination = isFolder ? output + "/adapter_model.safetensors" : output
    if isFolder {
        try fm.createDirectory(atPath: output, withIntermediateDirectories: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: input + "/adapter_config.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        config(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: output + "/adapter_config.json"))
    }
    let file = try TensorFile(source)
    var entries: [SafeTensorsWriter.Entry] = []
    for info in file.file.tensors {
        if !info.dtype.isFloatingPoint {
            let bytes = try file.bytes(info.name)
            entries.append(.init(name: info.name, dtype: info.dtype, shape: info.shape) { sink in try bytes.withUnsafeBytes { try sink($0) } })
            continue
        }
        guard let (shape, values) = edit(info.name, info.shape, try file.floats(info.name)) else { continue }
        let dtype = info.dtype
        entries.append(.init(name: info.name, dtype: dtype, shape: shape) { sink in
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * dtype.byteSize, 1), alignment: 16)
            defer { raw.deallocate() }
            values.withUnsafeBufferPointer { FloatEncoding.store($0, as: dtype, into: raw) }
            try sink(UnsafeRawBufferPointer(rebasing: raw[0..<(values.count * dtype.byteSize)]))
        })
    }
    let writer = try AtomicFileWriter(path: destination)
    try SafeTensorsWriter.write(entries, metadata: file.file.metadata, to: writer)
    try writer.commit()
}

/// A deterministic perturbation: `x·factor + amplitude·sin(i·0.7 + phase)`.
func perturb(_ values: [Float], factor: Float, amplitude: Float, phase: Float = 0) -> [Float] {
    values.enumerated().map { i, x in x * factor + amplitude * Float(sin(Double(i) * 0.7 + Double(phase))) }
}

/// Python with the packages a cross-check needs.

extension CLI.Result {
    /// The JSON report on stdout.
    func report() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any], "not JSON: \(out) \(stderr)")
    }
}
