import AdapterFormat
import Foundation
import TaskVector

/// `compeft-example-apply CONTAINER BASE [--factor F] [-o OUT.safetensors]`: adds a full fine-tune's
/// compressed residual into its base model's weights in place and says what changed.
///
///     swift run compeft-example-apply full-ft.cpeft Fixtures/files/tiny-bert -o tuned.safetensors
@main
struct ApplyAdapterExample {
    static let usage = "usage: compeft-example-apply CONTAINER BASE [--factor F] [-o OUT.safetensors]"

    static func main() {
        var positional: [String] = []
        var factor: Float = 1
        var output: String?
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--factor":
                guard let text = arguments.popFirst(), let value = Float(text), value.isFinite else { fail(usage, status: 2) }
                factor = value
            case "-o", "--output":
                guard let path = arguments.popFirst() else { fail(usage, status: 2) }
                output = path
            case "-h", "--help":
                print(usage)
                return
            default:
                positional.append(argument)
            }
        }
        guard positional.count == 2 else { fail(usage, status: 2) }
        do {
            try run(container: positional[0], base: positional[1], factor: factor, output: output)
        } catch {
            fail("compeft-example-apply: error: \(error)", status: 1)
        }
    }

    static func run(container: String, base basePath: String, factor: Float, output: String?) throws {
        let reader = try ContainerReader(path: container)
        let base = try Checkpoint(path: basePath)
        let applied = try AdapterApplication.apply(reader, to: base, factor: factor)
        let compression = reader.index.compression
        print("\(container): \(reader.index.inputKind), \(reader.index.tensors.count) tensors, \(compression.method) at density "
              + "\(compression.density)% (\(compression.scope) scope)")
        print("applying it to \(basePath) with factor \(factor):")
        var totalChanged = 0
        var totalValues = 0
        for t in applied {
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            let count = t.shape.reduce(1, *)
            switch t.action {
            case .added(let changed, let maxChange):
                totalChanged += changed
                totalValues += count
                let percent = count == 0 ? 0 : 100 * Double(changed) / Double(count)
                print("  \(t.name) \(shape) \(t.dtype.rawValue): +τ changed \(changed) of \(count) values "
                      + "(\(String(format: "%.1f", percent))%), max |Δ| \(String(format: "%.6g", maxChange))")
            case .replaced:
                print("  \(t.name) \(shape) \(t.dtype.rawValue): replaced by the container's exact copy")
            case .unchanged:
                print("  \(t.name) \(shape) \(t.dtype.rawValue): not in the container, unchanged")
            }
        }
        print("\(applied.count) tensors; \(totalChanged) of \(totalValues) residual values changed")
        if let output {
            let writer = try AtomicFileWriter(path: output)
            do {
                try SafeTensorsWriter.write(applied.map { t in
                    SafeTensorsWriter.Entry(name: t.name, dtype: t.dtype, shape: t.shape) { sink in
                        try t.bytes.withUnsafeBytes { try sink($0) }
                    }
                }, to: writer)
                try writer.commit()
            } catch {
                writer.abandon()
                throw error
            }
            print("wrote \(output)")
        }
    }

    static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(status)
    }
}
