@_exported import CompeftTestSupport
import Foundation
import TaskVector

/// Builds a residual SourceTensor (init zero, f32) from values.
func sourceTensor(_ name: String, _ values: [Float], initRule: InitRule = .zero, dtype: DType = .f32) -> SourceTensor {
    var bytes: [UInt8] = []
    switch dtype {
    case .f32: for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
    case .f16: for v in values { withUnsafeBytes(of: FloatConversion.f16(from: v).littleEndian) { bytes += $0 } }
    case .bf16: for v in values { withUnsafeBytes(of: FloatConversion.bf16(from: v).littleEndian) { bytes += $0 } }
    case .f64: for v in values { withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { bytes += $0 } }
    default: fatalError()
    }
    return SourceTensor(name: name, dtype: dtype, shape: [values.count], fileName: "t.safetensors", role: .residual,
                        initRule: initRule, data: TensorData(dtype: dtype, copying: bytes))
}

/// Adversarial value sets: ties, zeros of both signs, subnormals, huge and tiny magnitudes.
enum Inputs {
    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float.random(in: -1...1, using: &g) }
    }

    /// Values drawn from a small set, so the threshold falls on a long run of ties.
    static func ties(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        let levels: [Float] = [0, -0.0, 0.25, -0.25, 0.5, -0.5, 1, -1, 0.125]
        return (0..<n).map { _ in levels[Int(g.next() % UInt64(levels.count))] }
    }

    static func special(_ n: Int, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        let specials: [Float] = [0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
                                 1e-30, -1e-30, 3e38, -3e38, 1, -1, 0x1p-126 * 0.5]
        return (0..<n).map { i in
            i % 3 == 0 ? specials[Int(g.next() % UInt64(specials.count))] : Float.random(in: -2...2, using: &g)
        }
    }
}
