/// Elementwise kernels whose lanes are independent: each element gets the same binary64 operations, in the
/// same order, as the plain scalar loop (a product, then a sum; never fused).
package enum Lanes {
    /// y[k] += s·v[k] for k in 0 ..< count (the product is v[k]·s, the same bits: multiplication commutes).
    @inlinable @inline(__always)
    package static func add(_ s: Double, times v: UnsafePointer<Double>, to y: UnsafeMutablePointer<Double>, count: Int) {
        let lane = SIMD8<Double>(repeating: s)
        var k = 0
        while k &+ 8 <= count {
            let sum = UnsafeRawPointer(y + k).loadUnaligned(as: SIMD8<Double>.self)
                + lane * UnsafeRawPointer(v + k).loadUnaligned(as: SIMD8<Double>.self)
            UnsafeMutableRawPointer(y + k).storeBytes(of: sum, as: SIMD8<Double>.self)
            k &+= 8
        }
        while k < count {
            y[k] += s * v[k]
            k &+= 1
        }
    }
}
