import Quantize
import TaskVector

/// Sizes of the ternary payloads of real adapters, compressed exactly as `compeft compress` does
/// (global scope, α auto), coded four ways in the same run: the gap coder, what the container stores
/// (per tensor the smaller of the gap coder and zstd on the plain packing), zstd level 19 on the plain
/// v1 packing (mask then signs), and zstd level 19 on a 2-bit packing. Bytes are summed over the
/// residual tensors; the bound is the iid bound d·H(n/d) + n of the whole group.
enum FixtureTable {
    static func run(paths: [String]) {
        print("| input | K % | d | n | iid bound B | gap B | ×bound | container B | ×bound | v1+zstd19 B | ×bound | 2bit+zstd19 B | ×bound | container ÷ best zstd |")
        print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for path in paths {
            let parts = path.split(separator: "@", maxSplits: 1).map(String.init)
            let input: TaskVectorInput
            do {
                input = try TaskVectorInput.load(path: parts[0], base: parts.count > 1 ? parts[1] : nil)
            } catch {
                print("| \(path) | error: \(error) |")
                continue
            }
            for density in [1.0, 2, 5, 10, 20, 30, 50] {
                // The paper's rule (kind .other), whose single global group this table measures.
                guard let plan = try? Planner.plan(input.tensors, options: .init(density: .percent(density)), kind: .other), let g = plan.global else { continue }
                var gap = 0, container = 0, v1 = 0, twoBit = 0, n = 0
                let chunks = ResidualChunks()
                for (t, tp) in zip(input.tensors, plan.tensors) where tp.storage == .ternary {
                    let code = TernaryCode.encode(t, thresholdBits: tp.thresholdBits, keepValues: false, chunks: chunks)
                    n += code.nonzeroCount
                    let g = GapCoder.encode(code).count
                    let z = Zstd.compress(v1Bytes(code), level: 19).count
                    gap += g
                    v1 += z
                    container += t.count <= 1 << 16 ? min(g, z) : g  // the container tries zstd up to 64 Ki values
                    twoBit += Zstd.compress(twoBitBytes(code), level: 19).count
                }
                let bound = GapCoder.shannonBoundBits(count: g.total, nonzero: n) / 8
                func r(_ x: Int) -> String { bound > 0 ? String(format: "%.4f", Double(x) / bound) : "–" }
                let name = parts[0].split(separator: "/").last.map(String.init) ?? parts[0]
                print("| \(name) | \(Int(density)) | \(g.total) | \(n) | \(String(format: "%.0f", bound)) | \(gap) | \(r(gap)) | \(container) | \(r(container)) | \(v1) | \(r(v1)) | \(twoBit) | \(r(twoBit)) | \(String(format: "%.4f", Double(container) / Double(min(v1, twoBit)))) |")
            }
        }
    }
}
