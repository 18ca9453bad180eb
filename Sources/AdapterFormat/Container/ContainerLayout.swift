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

    /// The version fields of a preamble.
    struct Preamble: Equatable {
        var major: UInt16
        var minor: UInt16
        var flags: UInt32

        /// Parses the 16 preamble bytes; `nil` when they are short or the magic is wrong.
        init?(parsing bytes: [UInt8]) {
            guard bytes.count == ContainerLayout.preambleSize, Array(bytes[0..<8]) == ContainerLayout.magic else { return nil }
            let fields = bytes.withUnsafeBytes { b in (b.readLE(UInt16.self, at: 8), b.readLE(UInt16.self, at: 10), b.readLE(UInt32.self, at: 12)) }
            guard let major = fields.0, let minor = fields.1, let flags = fields.2 else { return nil }
            (self.major, self.minor, self.flags) = (major, minor, flags)
        }
    }

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
        /// XXH64 of the preamble followed by the trailer's first 32 bytes (as read; recomputed when written).
        var headerHash: UInt64 = 0

        init(indexOffset: UInt64, indexLength: UInt64, indexRawLength: UInt64, indexHash: UInt64) {
            self.indexOffset = indexOffset
            self.indexLength = indexLength
            self.indexRawLength = indexRawLength
            self.indexHash = indexHash
        }

        /// Parses the 48 trailer bytes; `nil` when they are short or the end magic is wrong. The header
        /// hash is not checked here (it covers the preamble too).
        init?(parsing bytes: [UInt8]) {
            guard bytes.count == ContainerLayout.trailerSize, Array(bytes[40..<48]) == ContainerLayout.trailerMagic else { return nil }
            let fields = bytes.withUnsafeBytes { b in (0..<5).map { b.readLE(UInt64.self, at: $0 * 8) } }
            guard let offset = fields[0], let length = fields[1], let raw = fields[2], let hash = fields[3],
                let header = fields[4]
            else { return nil }
            self.init(indexOffset: offset, indexLength: length, indexRawLength: raw, indexHash: hash)
            headerHash = header
        }
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
