import Quantize

/// The ComPEFT rule written as plainly as possible: sort, pick the m-th smallest |τ|, keep |τ| ≥ t.
/// The tests compare the streaming implementation against this.
enum ReferenceCompeft {
    struct Result {
        var threshold: Float
        var kept: [Bool]
        var keptCount: Int
        var keptNonzero: Int
        var sigma: Double
        var scale: Float
        var values: [Float]
    }

    static func keepCount(_ d: Int, _ density: Double) -> Int { Int((Double(d) * (density / 100)).rounded(.towardZero)) }

    static func sigma(_ x: [Float]) -> Double {
        guard x.count > 1 else { return 0 }
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        let ss = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
        return (ss / Double(x.count - 1)).squareRoot()
    }

    static func run(_ x: [Float], density: Double, method: CompressionOptions.Method = .compeft,
                    alpha: CompressionOptions.Alpha = .auto) -> Result {
        let d = x.count
        let m = d - keepCount(d, density)
        let magnitudes = x.map { abs($0) }.sorted()
        let t: Float = m == 0 ? 0 : magnitudes[m - 1]
        let kept = x.map { m == 0 || abs($0) >= t }
        let keptCount = kept.filter { $0 }.count
        let keptNonzero = zip(x, kept).filter { $1 && $0 != 0 }.count
        let s = sigma(x)
        var scale = 0.0
        switch (method, alpha) {
        case (.compeft, .value(let a)): scale = a * s
        case (.compeft, .auto):
            let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            scale = keptNonzero > 0 ? norm / Double(keptNonzero).squareRoot() : 0
        case (.stc, let a):
            let factor: Double = if case .value(let v) = a { v } else { 1 }
            let sum = zip(x, kept).filter { $1 }.reduce(0.0) { $0 + Double(abs($1.0)) }
            scale = keptCount > 0 ? factor * sum / Double(keptCount) : 0
        case (.prune, _): break
        }
        let s32 = Float(scale)
        let values: [Float] = zip(x, kept).map { v, k in
            guard k, v != 0 else { return 0 }
            if method == .prune { return v }
            return v < 0 ? -s32 : s32
        }
        return Result(threshold: t, kept: kept, keptCount: keptCount, keptNonzero: keptNonzero, sigma: s,
                      scale: s32, values: values)
    }
}
