import AdapterFormat
import Foundation
import TaskVector

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The serving path end to end in memory: open a container (mapped) and decode every float tensor into a
/// caller-owned bf16 buffer with `ContainerReader.decode`, one thread, as `Container.decode(name, out=)`
/// does from Python. CPU time of this thread, best of `rounds`; the tensors of each payload encoding are
/// also timed on their own.
///
/// Prints one JSON line per container after the human-readable line, so a driver can compare two builds
/// (`Benchmarks/serving/decoder_ab.py`).
enum ContainerDecode {
    static func run(paths: [String], rounds: Int) {
        for path in paths { run(path: path, rounds: rounds) }
    }

    /// This thread's CPU time in seconds.
    static func cpuTime() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func run(path: String, rounds: Int) {
        guard let reader = try? ContainerReader(path: path) else { print("cannot open \(path)"); return }
        let tensors = reader.index.tensors.filter { $0.dtype.isFloatingPoint }
        let total = tensors.reduce(0) { $0 + $1.count }
        let largest = tensors.map(\.count).max() ?? 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, largest * 2), alignment: 64)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        var checksum: UInt64 = 0
        func decode(_ subset: [ContainerIndex.Tensor]) -> Double {
            var best = Double.infinity
            for _ in 0..<rounds {
                let start = cpuTime()
                for t in subset {
                    let out = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(t.count * 2)])
                    try! reader.decode(t, as: .bf16, into: out, residualOnly: true)
                    checksum &+= UInt64(out.load(fromByteOffset: (t.count / 2) * 2, as: UInt16.self))
                }
                best = min(best, cpuTime() - start)
            }
            return best
        }
        let all = decode(tensors)
        var byEncoding: [String] = []
        for encoding in Set(tensors.map(\.encoding)).sorted() {
            let subset = tensors.filter { $0.encoding == encoding }
            let seconds = decode(subset)
            let kept = subset.reduce(0) { $0 + $1.nonzero }
            let values = subset.reduce(0) { $0 + $1.count }
            byEncoding.append(String(format: "\"%d\": {\"tensors\": %d, \"values\": %d, \"nonzero\": %d, \"seconds\": %.6f}",
                                     encoding, subset.count, values, kept, seconds))
        }
        print(String(format: "%@: %d tensors, %d params, decode to bf16 %.4f s CPU = %.3g params/s (checksum %llu)",
                     path, tensors.count, total, all, Double(total) / all, checksum))
        print("{\"path\": \"\(path)\", \"params\": \(total), \"seconds\": \(String(format: "%.6f", all)), "
              + "\"encodings\": {\(byEncoding.joined(separator: ", "))}}")
    }
}
