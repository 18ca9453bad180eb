/// The density-sweep figures (what `compeft analyze` and Quantize's `DensitySweep` report) computed as
/// plainly as possible: sort |τ|, take the threshold, build τ̂ as an array and measure it in double
/// precision. The streaming implementations are compared with this.
public enum ReferenceSweep {
    public struct Measure {
        public var scale: Double?
        public var error: Double?
        public var cosine: Double?
        public var normRatio: Double?
    }

    public struct Figures {
        public var count: Int
        public var kept: Int
        public var keptNonzero: Int
        public var energyShare: Double?
        public var threshold: Float?
        public var sigma: Double?
        public var chosen: Measure
        public var normPreserving: Measure
        public var l2Optimal: Measure
        public var alphaSigma: Measure
    }

    public static func measure(_ x: [Double], _ y: [Double], scale: Double?) -> Measure {
        let xx = x.reduce(0) { $0 + $1 * $1 }, yy = y.reduce(0) { $0 + $1 * $1 }
        let xy = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
        let ee = zip(x, y).reduce(0) { $0 + ($1.1 - $1.0) * ($1.1 - $1.0) }
        guard xx > 0 else { return Measure(scale: scale) }
        return Measure(scale: scale, error: (ee / xx).squareRoot(),
                       cosine: yy > 0 ? xy / (xx.squareRoot() * yy.squareRoot()) : nil, normRatio: (yy / xx).squareRoot())
    }

    /// Figures of each tensor and of all of them together at density `k` (in percent), for `scope`
    /// `global` or `tensor`, `method` `compeft` or `stc`, and α (`nil` for auto).
    public static func run(_ parts: [[Float]], density k: Double, scope: String, method: String, alpha: Double?)
        -> (total: Figures, tensors: [Figures])
    {
        let a = alpha ?? 1
        let groups: [[Int]] = scope == "global" ? [Array(parts.indices)] : parts.indices.map { [$0] }
        var tensors = [Figures?](repeating: nil, count: parts.count)
        var chosen = [[Double]](repeating: [], count: parts.count)
        var candidates = [[[Double]]](repeating: [], count: parts.count)
        for members in groups {
            let x = members.flatMap { parts[$0] }
            let d = x.count
            let m = d - Int((Double(d) * (k / 100)).rounded(.towardZero))
            let magnitudes = x.map { abs($0) }.sorted()
            let t: Float = m == 0 ? 0 : magnitudes[m - 1]
            let keptAll = x.map { m == 0 || abs($0) >= t }
            let mean = x.reduce(0.0) { $0 + Double($1) } / Double(max(d, 1))
            let sigma = d > 1 ? (x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(d - 1)).squareRoot() : 0
            let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let keptValues = zip(x, keptAll).filter { $1 }.map { Double(abs($0.0)) }
            let nonzero = keptValues.filter { $0 != 0 }
            let n = Double(nonzero.count)
            let scale: Double = switch method {
            case "stc": keptValues.isEmpty ? 0 : a * keptValues.reduce(0, +) / Double(keptValues.count)
            default: alpha.map { $0 * sigma } ?? (n > 0 ? norm / n.squareRoot() : 0)
            }
            let s32 = Float(scale)
            let exact = sigma == 0 || !s32.isFinite || !(s32 > 0)
            let s = [n > 0 ? norm / n.squareRoot() : 0, n > 0 ? nonzero.reduce(0, +) / n : 0, a * sigma]
            var offset = 0
            for i in members {
                let v = parts[i]
                let kept = Array(keptAll[offset..<offset + v.count])
                offset += v.count
                let ternary = { (scale: Double) in zip(v, kept).map { x, k in k && x != 0 ? (x < 0 ? -scale : scale) : 0 } }
                chosen[i] = exact ? v.map(Double.init) : ternary(Double(s32))
                candidates[i] = s.map(ternary)
                let x = v.map(Double.init)
                let sq = x.reduce(0) { $0 + $1 * $1 }
                let keptSq = zip(x, kept).filter { $1 }.reduce(0.0) { $0 + $1.0 * $1.0 }
                tensors[i] = Figures(
                    count: v.count, kept: kept.filter { $0 }.count, keptNonzero: zip(v, kept).filter { $1 && $0 != 0 }.count,
                    energyShare: sq > 0 ? keptSq / sq : nil, threshold: t, sigma: sigma,
                    chosen: measure(x, chosen[i], scale: exact ? nil : Double(s32)),
                    normPreserving: measure(x, candidates[i][0], scale: s[0]), l2Optimal: measure(x, candidates[i][1], scale: s[1]),
                    alphaSigma: measure(x, candidates[i][2], scale: s[2]))
            }
        }
        let all = parts.flatMap { $0.map(Double.init) }
        let flat = { (j: Int) in parts.indices.flatMap { candidates[$0][j] } }
        let ts = tensors.map { $0! }
        let allSq = all.reduce(0) { $0 + $1 * $1 }
        let keptSq = parts.indices.reduce(0.0) { acc, i in
            acc + (ts[i].energyShare ?? 0) * parts[i].reduce(0.0) { $0 + Double($1) * Double($1) }
        }
        let global = scope == "global"
        let total = Figures(
            count: all.count, kept: ts.reduce(0) { $0 + $1.kept }, keptNonzero: ts.reduce(0) { $0 + $1.keptNonzero },
            energyShare: allSq > 0 ? keptSq / allSq : nil, threshold: global ? ts.first?.threshold : nil,
            sigma: global ? ts.first?.sigma : nil,
            chosen: measure(all, chosen.flatMap { $0 }, scale: global ? ts.first?.chosen.scale : nil),
            normPreserving: measure(all, flat(0), scale: global ? ts.first?.normPreserving.scale : nil),
            l2Optimal: measure(all, flat(1), scale: global ? ts.first?.l2Optimal.scale : nil),
            alphaSigma: measure(all, flat(2), scale: global ? ts.first?.alphaSigma.scale : nil))
        return (total, ts)
    }
}
