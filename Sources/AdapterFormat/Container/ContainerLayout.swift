import TaskVector

/// The fixed parts of a container file: the preamble at its start and the trailer at its end.
///
/// ```
/// format 1.1 (written):
///   preamble: magic "\x89CPEFT\r\n" | u16 major = 1 | u16 minor = 1                      12 bytes
///   payloads: back to back, at offsets the index implies
///   index:    u8 codec | body (raw, a zstd frame, or a zstd frame over dictionary 1)
///   trailer:  u32 index length | u32 XXH64(preamble ‖ index length), low bits | u64 XXH64(index) |
///             "CPFT"                                                                     20 bytes
/// format 1.0 (read):
///   preamble: magic | u16 major = 1 | u16 minor = 0 | u32 flags                            16 bytes
///   payloads, then one zstd frame of JSON
///   trailer:  u64 index offset | u64 index length | u64 index raw length |
///             u64 XXH64(index) | u64 XXH64(preamble ‖ first 32 trailer bytes) | "CPEFTEND"  48 bytes
/// ```
/// All integers little-endian. The index comes last so a container can be written to a pipe.
public enum ContainerLayout {
    public static let magic: [UInt8] = [0x89, 0x43, 0x50, 0x45, 0x46, 0x54, 0x0D, 0x0A]
    /// The version writers write.
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 1
    /// Sizes of the preamble and trailer of format 1.1 (and every later 1.x).
    public static let preambleSize = 12
    public static let trailerSize = 20
    public static let trailerMagic: [UInt8] = Array("CPFT".utf8)
    /// The smallest file either layout allows.
    static let minimumSize = preambleSize + trailerSize

    /// The version fields at the start of a file.
    struct Preamble: Equatable {
        var major: UInt16
        var minor: UInt16

        /// Parses the start of a file (at least 12 bytes); `nil` when it is short or the magic is wrong.
        init?(parsing bytes: [UInt8]) {
            guard bytes.count >= ContainerLayout.preambleSize, Array(bytes[0..<8]) == ContainerLayout.magic else { return nil }
            let fields = bytes.withUnsafeBytes { b in (b.readLE(UInt16.self, at: 8), b.readLE(UInt16.self, at: 10)) }
            guard let major = fields.0, let minor = fields.1 else { return nil }
            (self.major, self.minor) = (major, minor)
        }

        /// Format 1.0, whose preamble, trailer and index differ from every later 1.x.
        var isVersion10: Bool { major == 1 && minor == 0 }

        /// The preamble's size in this version.
        var size: Int { isVersion10 ? Legacy.preambleSize : ContainerLayout.preambleSize }
    }

    /// The 12 preamble bytes a writer writes.
    static func preamble() -> [UInt8] {
        var out = magic
        out.appendLE(majorVersion)
        out.appendLE(minorVersion)
        return out
    }

    /// The trailer of format 1.1.
    struct Trailer: Equatable {
        /// Bytes of the stored index (codec byte included); it ends where the trailer starts.
        var indexLength: UInt32
        /// The low 32 bits of the XXH64 of the preamble followed by the `indexLength` field: a damaged
        /// length is caught before the index is read.
        var headerCheck: UInt32
        /// XXH64 of the stored index.
        var indexChecksum: UInt64

        /// Parses the last 20 bytes of a file; `nil` when they are short or the end magic is wrong.
        init?(parsing bytes: [UInt8]) {
            guard bytes.count == ContainerLayout.trailerSize, Array(bytes[16..<20]) == ContainerLayout.trailerMagic else { return nil }
            let fields = bytes.withUnsafeBytes { b in (b.readLE(UInt32.self, at: 0), b.readLE(UInt32.self, at: 4), b.readLE(UInt64.self, at: 8)) }
            guard let length = fields.0, let check = fields.1, let checksum = fields.2 else { return nil }
            (indexLength, headerCheck, indexChecksum) = (length, check, checksum)
        }

        /// The header check for `preamble` and an index of `indexLength` bytes.
        static func headerCheck(preamble: [UInt8], indexLength: UInt32) -> UInt32 {
            var covered = preamble
            covered.appendLE(indexLength)
            return UInt32(truncatingIfNeeded: XXH64.hash(covered))
        }

        /// The 20 trailer bytes for `preamble` and the stored `index`.
        static func bytes(preamble: [UInt8], index: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            out.appendLE(UInt32(index.count))
            out.appendLE(headerCheck(preamble: preamble, indexLength: UInt32(index.count)))
            out.appendLE(XXH64.hash(index))
            return out + ContainerLayout.trailerMagic
        }
    }

    /// The fixed parts of format 1.0, which readers still read.
    enum Legacy {
        static let preambleSize = 16
        static let trailerSize = 48
        static let trailerMagic: [UInt8] = Array("CPEFTEND".utf8)

        struct Trailer: Equatable {
            var indexOffset: UInt64
            var indexLength: UInt64
            var indexRawLength: UInt64
            var indexHash: UInt64
            /// XXH64 of the preamble followed by the trailer's first 32 bytes.
            var headerHash: UInt64

            /// Parses the 48 trailer bytes; `nil` when they are short or the end magic is wrong. The
            /// header hash is not checked here (it covers the preamble too).
            init?(parsing bytes: [UInt8]) {
                guard bytes.count == Legacy.trailerSize, Array(bytes[40..<48]) == Legacy.trailerMagic else { return nil }
                let fields = bytes.withUnsafeBytes { b in (0..<5).map { b.readLE(UInt64.self, at: $0 * 8) } }
                guard let offset = fields[0], let length = fields[1], let raw = fields[2], let hash = fields[3],
                    let header = fields[4]
                else { return nil }
                (indexOffset, indexLength, indexRawLength, indexHash, headerHash) = (offset, length, raw, hash, header)
            }
        }

        /// The 48 trailer bytes of a 1.0 container (tests build edited 1.0 containers with it).
        static func trailer(indexOffset: UInt64, indexLength: UInt64, indexRawLength: UInt64, indexHash: UInt64,
                            preamble: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            out.appendLE(indexOffset)
            out.appendLE(indexLength)
            out.appendLE(indexRawLength)
            out.appendLE(indexHash)
            out.appendLE(XXH64.hash(preamble + out))
            return out + trailerMagic
        }
    }
}
