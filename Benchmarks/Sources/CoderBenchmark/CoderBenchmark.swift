import Quantize
import TaskVector

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sizes and speeds of ``GapCoder`` beside zstd -19 on the v1 packing and on a 2-bit packing.
///
/// Usage: `swift run -c release --package-path Benchmarks CoderBenchmark [--large] [--quick]`
/// (`--decode-container FILE… [--rounds N]` times the serving decode of every tensor of each container into bf16
/// in CPU time, best of N (5), also per payload encoding;
/// `--fixtures ADAPTER…` prints the size table for real adapters instead; `--coder-only` skips the zstd baselines; `--large` adds 10⁸ values; `--quick` runs 10⁵ and 10⁶ only; `--size N` runs d = N only; `--density P` runs p = P only).
@main
struct CoderBenchmark {
    nonisolated(unsafe) static var densities = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
    static let scale: Float = 0.0123
    nonisolated(unsafe) static var coderOnly = false

    static func main() {
        let arguments = CommandLine.arguments
        if let i = arguments.firstIndex(of: "--decode-container"), i + 1 < arguments.count {
            var rounds = 5
            if let r = arguments.firstIndex(of: "--rounds"), r + 1 < arguments.count, let n = Int(arguments[r + 1]) { rounds = n }
            let paths = arguments[(i + 1)...].prefix { !$0.hasPrefix("--") }
            ContainerDecode.run(paths: Array(paths), rounds: rounds)
            return
        }
        if let i = arguments.firstIndex(of: "--fixtures") {
            FixtureTable.run(paths: Array(arguments[(i + 1)...]))
            return
        }
        var sizes = [100_000, 1_000_000, 10_000_000]
        if arguments.contains("--quick") { sizes = [100_000, 1_000_000] }
        if arguments.contains("--large") { sizes.append(100_000_000) }
        coderOnly = arguments.contains("--coder-only")
        if let i = arguments.firstIndex(of: "--density"), i + 1 < arguments.count, let p = Double(arguments[i + 1]) {
            densities = [p]
        }
        if let i = arguments.firstIndex(of: "--size"), i + 1 < arguments.count, let size = Int(arguments[i + 1]) {
            sizes = [size]
        }

        print("zstd \(Zstd.version); throughput in 10⁶ values per second of one thread's CPU time, best of several runs")
        print("")
        if coderOnly {
            print("| input | d | p | coder B | ×bound | enc M/s | dec bf16 M/s |")
            print("|---|--:|--:|--:|--:|--:|--:|")
        } else {
            print("| input | d | p | n | bound B | coder B | ×bound | f32/coder | bf16/coder | enc M/s | dec bf16 M/s "
                  + "| v1+zstd19 B | ×bound | enc M/s | dec M/s | 2bit+zstd19 B | ×bound | enc M/s | dec M/s |")
            print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        }
        var alternatives: [String] = []
        for size in sizes {
            for make in [Residual.gaussian, Residual.laplace, Residual.clustered] {
                let residual = make(size, UInt64(size))
                let sorted = residual.sortedMagnitudes()
                for density in densities {
                    let code = residual.ternarize(keeping: Int(Double(size) * density), sorted: sorted)
                    let row = measure(code, name: residual.name)
                    print(row.table)
                    if size == 1_000_000 && !coderOnly { alternatives.append(row.alternatives) }
                }
            }
        }
        guard !alternatives.isEmpty else { return }
        print("")
        print("Design alternatives at d = 10⁶ (bytes; ×bound in parentheses):")
        print("")
        print("| input | p | bound B | coder B | coder dec M/s | static Golomb, best single m, B | adaptive binary range coder B "
              + "| range coder dec M/s | adaptive binary AC ideal (one KT estimator), B |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for line in alternatives { print(line) }
    }

    static func measure(_ code: TernaryCode, name: String) -> (table: String, alternatives: String) {
        let d = code.count
        let n = code.nonzeroCount
        let bound = GapCoder.shannonBoundBits(count: d, nonzero: n) / 8
        let positive = FloatConversion.bf16(from: scale)

        // Reference expansion, from the plain v1 bytes.
        let v1 = v1Bytes(code)
        var reference = [UInt16](repeating: 0, count: d)
        v1.withUnsafeBytes { raw in
            reference.withUnsafeMutableBufferPointer { expandV1(raw, count: d, positive: positive, into: $0) }
        }
        var out = [UInt16](repeating: 0, count: d)

        // The coder.
        var encoded: [UInt8] = []
        let encodeTime = best { encoded = GapCoder.encode(code) }
        let decoded = try! encoded.withUnsafeBytes { try GapCoder.decode($0, count: d, nonzero: n) }
        precondition(decoded == code, "GapCoder round trip differs")
        let decodeTime = best {
            try! encoded.withUnsafeBytes { src in
                try out.withUnsafeMutableBytes { dst in
                    try GapCoder.decode(src, count: d, nonzero: n, scale: scale, into: dst, as: .bf16)
                }
            }
        }
        precondition(out == reference, "GapCoder bf16 decode differs")

        // (a) v1 packing + zstd -19.
        var v1Frame: [UInt8] = []
        guard !coderOnly else {
            return ("| \(name) | \(d) | \(format(Double(n) / Double(d) * 100, 1)) % | \(encoded.count) | \(format(Double(encoded.count) / bound, 4)) "
                    + "| \(format(Double(d) / encodeTime / 1e6, 0)) | \(format(Double(d) / decodeTime / 1e6, 0)) |", "")
        }
        let v1EncodeTime = best(maxRuns: 2) { v1Frame = Zstd.compress(v1Bytes(code), level: 19) }
        var scratch = [UInt8](repeating: 0, count: v1.count)
        out.withUnsafeMutableBufferPointer { $0.update(repeating: 0xFFFF) }
        let v1DecodeTime = best {
            scratch.withUnsafeMutableBytes { raw in
                Zstd.decompress(v1Frame, into: raw)
                out.withUnsafeMutableBufferPointer { expandV1(UnsafeRawBufferPointer(raw), count: d, positive: positive, into: $0) }
            }
        }
        precondition(out == reference, "v1 + zstd decode differs")

        // (b) two-bit packing + zstd -19.
        var twoBitFrame: [UInt8] = []
        let twoBitEncodeTime = best(maxRuns: 2) { twoBitFrame = Zstd.compress(twoBitBytes(code), level: 19) }
        var packed = [UInt8](repeating: 0, count: (d + 3) / 4)
        out.withUnsafeMutableBufferPointer { $0.update(repeating: 0xFFFF) }
        let twoBitDecodeTime = best {
            packed.withUnsafeMutableBytes { raw in
                Zstd.decompress(twoBitFrame, into: raw)
                out.withUnsafeMutableBufferPointer { expandTwoBit(UnsafeRawBufferPointer(raw), count: d, positive: positive, into: $0) }
            }
        }
        precondition(out == reference, "2-bit + zstd decode differs")

        func rate(_ seconds: Double) -> String { format(Double(d) / seconds / 1e6, 0) }
        func ratio(_ bytes: Int) -> String { format(Double(bytes) / bound, 4) }
        let p = format(Double(n) / Double(d) * 100, 1) + " %"
        let table = "| \(name) | \(d) | \(p) | \(n) | \(format(bound, 0)) | \(encoded.count) | \(ratio(encoded.count)) "
            + "| \(format(Double(4 * d) / Double(encoded.count), 1)) | \(format(Double(2 * d) / Double(encoded.count), 1)) "
            + "| \(rate(encodeTime)) | \(rate(decodeTime)) "
            + "| \(v1Frame.count) | \(ratio(v1Frame.count)) | \(rate(v1EncodeTime)) | \(rate(v1DecodeTime)) "
            + "| \(twoBitFrame.count) | \(ratio(twoBitFrame.count)) | \(rate(twoBitEncodeTime)) | \(rate(twoBitDecodeTime)) |"
        // An adaptive binary range coder, for comparison.
        var ranged: [UInt8] = []
        ranged = RangeCoderPrototype.encode(code)
        out.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        let rangedDecodeTime = best {
            out.withUnsafeMutableBufferPointer { out in
                out.update(repeating: 0)
                RangeCoderPrototype.decode(ranged, count: d, nonzero: n, positive: positive, into: out)
            }
        }
        precondition(out == reference, "range coder prototype decode differs")
        let staticBytes = staticGolombBytes(code)
        let ideal = adaptiveArithmeticIdealBytes(count: d, nonzero: n)
        let alternatives = "| \(name) | \(p) | \(format(bound, 0)) | \(encoded.count) (\(ratio(encoded.count))) | \(rate(decodeTime)) "
            + "| \(staticBytes) (\(ratio(staticBytes))) | \(ranged.count) (\(ratio(ranged.count))) | \(rate(rangedDecodeTime)) "
            + "| \(format(ideal, 0)) (\(format(ideal / bound, 4))) |"
        return (table, alternatives)
    }

    /// The fastest of several runs of `body`, in seconds of this thread's CPU time: at least 3 runs
    /// and 0.3 s, at most `maxRuns`.
    ///
    /// CPU time (`CLOCK_THREAD_CPUTIME_ID`) rather than wall time, because the benchmark measures
    /// throughput per core and the VM it runs on is shared: wall time would count the time slices that
    /// other processes take. Cache and memory-bandwidth contention still show.
    static func best(maxRuns: Int = 20, _ body: () -> Void) -> Double {
        func now() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
        }
        var fastest = Double.infinity
        var total = 0.0
        var runs = 0
        while runs < maxRuns && (runs < 3 || total < 0.3) {
            let start = now()
            body()
            let seconds = now() - start
            fastest = min(fastest, seconds)
            total += seconds
            runs += 1
            if total > 3 { break }
        }
        return fastest
    }

    static func format(_ value: Double, _ digits: Int) -> String {
        var scaled = value
        for _ in 0..<digits { scaled *= 10 }
        let rounded = Int(scaled.rounded())
        guard digits > 0 else { return String(rounded) }
        var text = String(abs(rounded))
        while text.count <= digits { text = "0" + text }
        text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
        return (rounded < 0 ? "-" : "") + text
    }
}
