/// CRC-32 as ZIP computes it (IEEE 802.3, reflected polynomial `0xEDB88320`, initial and final
/// value `0xFFFFFFFF`).
///
/// - Complexity: O(n), one table lookup per byte.
package enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c &>> 1) : c &>> 1 }
        return c
    }

    /// The checksum of `bytes`.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        table.withUnsafeBufferPointer { table in
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc &>> 8)
            }
            return ~crc
        }
    }
}
