import Quantize
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64, so every input is reproducible from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    mutating func unit() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// Standard normal, by Box–Muller.
    mutating func gaussian() -> Double {
        (-2 * log(unit())).squareRoot() * cos(2 * Double.pi * unit())
    }

    /// Standard Laplace, by inversion.
    mutating func laplace() -> Double {
        let u = unit() - 0.5
        return u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u)
    }
}

/// A residual to ternarize: a name and its values.
struct Residual {
    var name: String
    var values: [Float]

    static func gaussian(count: Int, seed: UInt64) -> Residual {
        var rng = SeededGenerator(seed: seed)
        return Residual(name: "gaussian", values: (0..<count).map { _ in Float(rng.gaussian()) })
    }

    static func laplace(count: Int, seed: UInt64) -> Residual {
        var rng = SeededGenerator(seed: seed)
        return Residual(name: "laplace", values: (0..<count).map { _ in Float(rng.laplace()) })
    }

    /// A matrix of rows × 1024 whose magnitudes cluster like a real adapter's: each row has a
    /// log-normal scale (σ = 1.5), 10 % of rows are nearly zero (× 0.02), and 2 % of columns are
    /// dense (× 4). Thresholding at top-k then gives per-row densities from ~0 to ~1 around the same
    /// overall density.
    static func clustered(count: Int, seed: UInt64) -> Residual {
        var rng = SeededGenerator(seed: seed)
        let width = 1024
        let columnScale = (0..<width).map { _ in rng.unit() < 0.02 ? 4.0 : 1.0 }
        var values = [Float]()
        values.reserveCapacity(count)
        var rowScale = 1.0
        for i in 0..<count {
            let column = i % width
            if column == 0 {
                rowScale = rng.unit() < 0.1 ? 0.02 : exp(1.5 * rng.gaussian())
            }
            values.append(Float(rng.laplace() * rowScale * columnScale[column]))
        }
        return Residual(name: "clustered", values: values)
    }

    /// |value| bit patterns sorted descending, for top-k thresholds at every density.
    func sortedMagnitudes() -> [UInt32] {
        values.map { $0.bitPattern & 0x7FFF_FFFF }.sorted(by: >)
    }

    /// The ternary code keeping values with |τ| ≥ the k-th largest magnitude.
    func ternarize(keeping k: Int, sorted: [UInt32]) -> TernaryCode {
        let threshold = k == 0 ? UInt32.max : sorted[k - 1]
        let count = values.count
        var mask = [UInt8](repeating: 0, count: (count + 7) / 8)
        var signs = [UInt8](repeating: 0, count: (count + 7) / 8)
        var n = 0
        values.withUnsafeBufferPointer { values in
            for i in 0..<count {
                let bits = values[i].bitPattern
                guard bits & 0x7FFF_FFFF >= threshold else { continue }
                mask[i >> 3] |= 1 << UInt8(i & 7)
                signs[n >> 3] |= UInt8(bits >> 31) << UInt8(n & 7)
                n += 1
            }
        }
        signs.removeLast(signs.count - (n + 7) / 8)
        return TernaryCode(count: count, keptCount: n, nonzeroCount: n, mask: mask, signs: signs)
    }
}
