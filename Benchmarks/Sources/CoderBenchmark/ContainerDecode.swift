import AdapterFormat
import Foundation
import TaskVector

/// The serving path end to end in memory: open a container (mapped) and decode every float tensor into a
/// caller-owned bf16 buffer with `ContainerReader.decode`, one thread. Wall clock, best of 5.
enum ContainerDecode {
    static func run(path: String) {
        guard let reader = try? ContainerReader(path: path) else { print("cannot open \(path)"); return }
        let tensors = reader.index.tensors.filter { $0.dtype.isFloatingPoint }
        let total = tensors.reduce(0) { $0 + $1.count }
        let largest = tensors.map(\.count).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, largest * 2), alignment: 64)
        defer { buffer.deallocate() }
        var best = Double.infinity
        var checksum: UInt64 = 0
        for _ in 0..<5 {
            let start = Date()
            for t in tensors {
                let out = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(t.count * 2)])
                try! reader.decode(t, as: .bf16, into: out, residualOnly: true)
                checksum &+= UInt64(out.load(fromByteOffset: (t.count / 2) * 2, as: UInt16.self))
            }
            best = min(best, Date().timeIntervalSince(start))
        }
        print(String(format: "%@: %d tensors, %d params, decode to bf16 %.3f s = %.3g params/s (checksum %llu)",
                     path, tensors.count, total, best, Double(total) / best, checksum))
    }
}
