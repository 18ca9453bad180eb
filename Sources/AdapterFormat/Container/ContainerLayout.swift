import TaskVector
/// The fixed parts of a container file: the 16-byte preamble and the 48-byte trailer.
///
/// ```
/// preamble: magic "\x89CPEFT\r\n" | u16 major | u16 minor | u32 flags (0)
/// payloads: one zstd frame per tensor or file, at offsets given by the index
/// index:    one zstd frame holding the JSON index
/// trailer:  u64 index offset | u64 index length | u64 index raw length |
///           u64 XXH64(index bytes) | u64 XXH64(preamble ‖ first 32 trailer bytes) | "CPEFTEND"
/// ```
/// All integers little-endian. The index comes last so a container can be written to a pipe.
public enum ContainerLayout {
    public static let magic: [UInt8] = [0x89, 0x43, 0x50, 0x45, 0x46, 0x54, 0x0D, 0x0A]
    public static let trailerMagic: [UInt8] = Array("CPEFTEND".utf8)
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let preambleSize = 16
    public static let trailerSize = 48

    static func preamble(major: UInt16 = majorVersion, minor: UInt16 = minorVersion) -> [UInt8] {
        var out = magic
        out.appendLE(major)
        out.appendLE(minor)
        out.appendLE(UInt32(0))
        return out
    }

    struct Trailer: Equatable {
        var indexOffset: UInt64
        var indexLength: UInt64
        var indexRawLength: UInt64
        var indexHash: UInt64
    }

    static func trailer(_ t: Trailer, preamble: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendLE(t.indexOffset)
        out.appendLE(t.indexLength)
        out.appendLE(t.indexRawLength)
        out.appendLE(t.indexHash)
        out.appendLE(XXH64.hash(preamble + out))
        out += trailerMagic
        return out
    }
}
