// Merging compressed experts: expand every ternary expert to floats and run the dense kernel
// (TensorMerge), against merging straight from the mask and sign bits (TernaryMerge).
//
//   swift run -c release --package-path Benchmarks/MergeBenchmark MergeBenchmark [--params N] [--experts K]
//       [--densities 1,10,30] [--repeats 2]
//
// Both sides run in the same process, single-threaded, on the same synthetic experts; every result is
// checked value for value against the other (precondition), so neither can be optimized away. Each
// time is the best of --repeats runs (the first run of a process also pays for fresh pages).

import Quantize
import TaskVector

struct Settings {
    var params = 100_000_000
    var experts = 8
    var densities: [Double] = [1, 10, 30]
    var repeats = 2

    init(_ arguments: [String]) {
        var i = 1
        while i < arguments.count {
            let value = i + 1 < arguments.count ? arguments[i + 1] : ""
            switch arguments[i] {
            case "--params": params = Int(value) ?? params
            case "--experts": experts = Int(value) ?? experts
            case "--densities": densities = value.split(separator: ",").compactMap { Double($0) }
            case "--repeats": repeats = max(1, Int(value) ?? repeats)
            default: fatalError("unknown argument \(arguments[i]); use --params N --experts K --densities 1,10,30 --repeats 2")
            }
            i += 2
        }
    }
}

/// A synthetic ternary expert: each position kept with probability `density`% (16-bit draws), random
/// signs, its own scale.
func makeExpert(count: Int, density: Double, seed: UInt64) -> TernaryExpert {
    var generator = Xoshiro256StarStar(seed: seed)
    let cut = UInt64((density / 100 * 65536).rounded())
    let wordCount = (count + 63) / 64
    var words = [UInt64](repeating: 0, count: wordCount)
    words.withUnsafeMutableBufferPointer { w in
        for index in 0..<wordCount {
            var bits: UInt64 = 0
            for group in 0..<16 {
                let r = generator.next()
                for lane in 0..<4 where (r &>> UInt64(lane &* 16)) & 0xFFFF < cut {
                    bits |= 1 &<< UInt64(group &* 4 &+ lane)
                }
            }
            w[index] = bits
        }
        if count & 63 != 0 { w[wordCount - 1] &= (1 &<< UInt64(count & 63)) &- 1 }
    }
    var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
    var nonzero = 0
    for (index, word) in words.enumerated() {
        nonzero &+= word.nonzeroBitCount
        for b in 0..<8 where index &* 8 &+ b < mask.count { mask[index &* 8 &+ b] = UInt8(truncatingIfNeeded: word &>> UInt64(b &* 8)) }
    }
    var signs = [UInt8](repeating: 0, count: (nonzero + 7) / 8)
    for i in signs.indices { signs[i] = UInt8(truncatingIfNeeded: generator.next()) }
    if nonzero % 8 != 0 { signs[signs.count - 1] &= UInt8((1 << (nonzero % 8)) - 1) }
    let code = TernaryCode(count: count, keptCount: nonzero, nonzeroCount: nonzero, mask: mask, signs: signs)
    return TernaryExpert(code: code, scale: 0.01 * Float(1 + seed % 5))
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

func time<T>(_ body: () -> T) -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = body()
    return (result, seconds(clock.now - start))
}

func rate(_ x: Double) -> String {
    if x >= 1e9 { return String(format2(x / 1e9)) + " G" }
    return String(format2(x / 1e6)) + " M"
}

func format2(_ x: Double) -> String {
    let scaled = (x * 100).rounded() / 100
    var s = String(scaled)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < 2 { s += String(repeating: "0", count: 2 - decimals) }
    }
    return s
}

let settings = Settings(CommandLine.arguments)
let n = settings.params
let k = settings.experts
let weights = (0..<k).map { Float(1) - Float($0) * 0.5 / Float(max(k, 1)) }
print("Merging \(k) ternary experts of \(n) parameters each, single-threaded.")
print("dense = expand every expert to Float (TernaryExpert.expanded) + TensorMerge.merge;")
print("ternary = TernaryMerge on the mask and sign bits. Results are checked equal value for value.")
print("Times are the best of \(settings.repeats) run(s).")
print("")
print("| method | density | dense: expand s | dense: merge s | dense total s | ternary s | speed-up | dense params/s | ternary params/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

for density in settings.densities {
    let experts = (0..<k).map { makeExpert(count: n, density: density, seed: UInt64($0) &+ 1) }
    for (name, method, combination) in [("task-arithmetic", MergeMethod.taskArithmetic, Combination.sum),
                                        ("ties (total)", MergeMethod.ties(density: 1, election: .total), Combination.disjointMean(.total))] {
        var (ternarySeconds, expandSeconds, mergeSeconds) = (Double.infinity, Double.infinity, Double.infinity)
        for _ in 0..<settings.repeats {
            let (ternary, t) = time { TernaryMerge.merge(experts, weights: weights, combination: combination) }
            let (expanded, e) = time { experts.map { $0.expanded() } }
            let (dense, m) = time { TensorMerge.merge(expanded, weights: weights, method: method) }
            precondition(dense.count == ternary.count)
            for i in dense.indices { precondition(dense[i] == ternary[i], "\(name): position \(i) differs: \(dense[i]) vs \(ternary[i])") }
            (ternarySeconds, expandSeconds, mergeSeconds) = (min(ternarySeconds, t), min(expandSeconds, e), min(mergeSeconds, m))
        }
        let total = expandSeconds + mergeSeconds
        let params = Double(n) * Double(k)
        print("| \(name) | \(format2(density))% | \(format2(expandSeconds)) | \(format2(mergeSeconds)) | \(format2(total)) | \(format2(ternarySeconds)) | \(format2(total / ternarySeconds))× | \(rate(params / total)) | \(rate(params / ternarySeconds)) |")
    }
}
