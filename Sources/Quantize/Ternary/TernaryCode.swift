public import TaskVector

/// A ternary (or sparse) tensor as bits: which positions are non-zero, and their signs or values.
///
/// `mask` has one bit per value, least significant bit first within each byte; bit i is set when
/// value i is kept and non-zero. `signs` has one bit per set mask bit, in position order, 1 for
/// negative. For sparse storage `values` holds the kept non-zero residuals in position order instead.
public struct TernaryCode: Sendable, Equatable {
    public var count: Int
    /// Values with |τ| ≥ t, zeros included.
    public var keptCount: Int
    /// Set bits in `mask`.
    public var nonzeroCount: Int
    public var mask: [UInt8]
    public var signs: [UInt8]
    public var values: [Float]

    public init(count: Int, keptCount: Int, nonzeroCount: Int, mask: [UInt8], signs: [UInt8], values: [Float] = []) {
        self.count = count
        self.keptCount = keptCount
        self.nonzeroCount = nonzeroCount
        self.mask = mask
        self.signs = signs
        self.values = values
    }

    /// Codes one tensor's residual: kept iff |τ| bit pattern ≥ `thresholdBits`.
    ///
    /// - Parameter keepValues: store the kept residual values (sparse / prune) instead of signs only.
    public static func encode(_ tensor: SourceTensor, thresholdBits: UInt32, keepValues: Bool,
                              chunks: borrowing ResidualChunks) -> TernaryCode {
        let n = tensor.count
        var mask = [UInt8](repeating: 0, count: (n + 7) / 8)
        var signs: [UInt8] = []
        signs.reserveCapacity(n / 64 + 8)
        var values: [Float] = []
        var kept = 0
        var nonzero = 0
        var signByte: UInt8 = 0
        mask.withUnsafeMutableBufferPointer { maskBits in
            chunks.forEach(tensor) { offset, chunk in
                for (j, v) in chunk.enumerated() {
                    let bits = v.bitPattern & 0x7FFF_FFFF
                    guard bits >= thresholdBits else { continue }
                    kept &+= 1
                    guard bits != 0 else { continue }
                    let i = offset &+ j
                    maskBits[i &>> 3] |= 1 &<< UInt8(i & 7)
                    if v.sign == .minus { signByte |= 1 &<< UInt8(nonzero & 7) }
                    nonzero &+= 1
                    if nonzero & 7 == 0 {
                        signs.append(signByte)
                        signByte = 0
                    }
                    if keepValues { values.append(v) }
                }
            }
        }
        if nonzero & 7 != 0 { signs.append(signByte) }
        if keepValues { signs = [] }
        return TernaryCode(count: n, keptCount: kept, nonzeroCount: nonzero, mask: mask, signs: signs, values: values)
    }

    /// Writes the decoded residual (±scale, the kept values, or 0) into `destination`.
    ///
    /// - Precondition: `destination.count == count`.
    public func decode(scale: Float, into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(destination.count == count)
        destination.update(repeating: 0)
        var k = 0
        for byteIndex in mask.indices {
            var byte = mask[byteIndex]
            while byte != 0 {
                let bit = byte.trailingZeroBitCount
                byte &= byte &- 1
                let i = byteIndex &* 8 &+ bit
                if values.isEmpty {
                    let negative = (signs[k &>> 3] &>> UInt8(k & 7)) & 1 == 1
                    destination[i] = negative ? -scale : scale
                } else {
                    destination[i] = values[k]
                }
                k &+= 1
            }
        }
    }
}
