/// XXH64, the 64-bit xxHash of Yann Collet (seed 0 unless given), used for every checksum in a
/// container. Matches the reference implementation bit for bit (see the tests' known vectors).
public struct XXH64: Sendable {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always)
    private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var a = acc &+ input &* p2
        a = (a &<< 31) | (a &>> 33)
        return a &* p1
    }

    @inline(__always)
    private static func mergeRound(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        var a = acc ^ round(0, value)
        a = a &* p1 &+ p4
        return a
    }

    /// The XXH64 of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = bytes.count
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2
            var v2 = seed &+ p2
            var v3 = seed
            var v4 = seed &- p1
            while i + 32 <= n {
                v1 = round(v1, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                v2 = round(v2, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
                v3 = round(v3, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)))
                v4 = round(v4, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)))
                i += 32
            }
            h = ((v1 &<< 1) | (v1 &>> 63)) &+ ((v2 &<< 7) | (v2 &>> 57))
                &+ ((v3 &<< 12) | (v3 &>> 52)) &+ ((v4 &<< 18) | (v4 &>> 46))
            h = mergeRound(h, v1)
            h = mergeRound(h, v2)
            h = mergeRound(h, v3)
            h = mergeRound(h, v4)
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt64(n)
        while i + 8 <= n {
            let k = round(0, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            h ^= k
            h = ((h &<< 27) | (h &>> 37)) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* p1
            h = ((h &<< 23) | (h &>> 41)) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(bytes[i]) &* p5
            h = ((h &<< 11) | (h &>> 53)) &* p1
            i += 1
        }
        h ^= h &>> 33
        h = h &* p2
        h ^= h &>> 29
        h = h &* p3
        h ^= h &>> 32
        return h
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// The hash as 16 lowercase hex digits, as the index stores it.
    public static func hex(_ value: UInt64) -> String {
        hex(value, digits: 16)
    }

    /// The low `digits` hex digits of `value`, lowercase, zero-padded (one small string, no temporaries:
    /// this runs for every payload of every container opened).
    static func hex(_ value: UInt64, digits: Int) -> String {
        precondition(digits > 0 && digits <= 16)
        return String(unsafeUninitializedCapacity: digits) { out in
            for i in 0..<digits {
                let nibble = UInt8(truncatingIfNeeded: value >> (4 * UInt64(digits - 1 - i))) & 0xF
                out[i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return digits
        }
    }
}
