/// Little-endian reads that return `nil` on short input instead of trapping.
extension UnsafeRawBufferPointer {
    @inlinable
    package func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset <= count - MemoryLayout<T>.size else { return nil }
        return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// Appends little-endian integers to a byte array.
extension Array where Element == UInt8 {
    @inlinable
    package mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
