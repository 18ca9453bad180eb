/// A read-only ZIP archive over a ``MappedFile``, for archives of stored (uncompressed) entries
/// such as the ones `torch.save` writes.
///
/// Opening reads the end-of-central-directory record (searched in the last 64 KiB + 22 bytes), the
/// ZIP64 locator and record when a field overflowed (0xFFFF / 0xFFFFFFFF), and every central
/// directory entry, checking each offset and length against the file before it is read; nothing is
/// allocated in proportion to a count the archive claims. An entry's data is handed out as a view
/// into the mapped file by ``data(of:verifyingChecksum:)``, which first checks its local header
/// (signature, same name, same method), that it is stored and not encrypted, that its range ends
/// before the central directory, and optionally its CRC-32.
///
/// Not supported (refused with a clear error): archives spanning several disks, compressed or
/// encrypted entries, and data prepended to the archive (self-extracting stubs).
package struct ZipArchive: Sendable {
    /// One central directory entry.
    package struct Entry: Sendable, Hashable {
        package var name: String
        /// 0 is stored; 8 is deflate.
        package var method: UInt16
        package var flags: UInt16
        package var crc32: UInt32
        package var compressedSize: Int
        package var uncompressedSize: Int
        package var localHeaderOffset: Int

        package var isEncrypted: Bool { flags & 0x0041 != 0 }  // bit 0: encrypted, bit 6: strong encryption
    }

    package let file: MappedFile
    /// Entries in central directory order.
    package let entries: [Entry]
    /// Where the central directory starts: every entry's data must end before it.
    package let centralDirectoryOffset: Int
    private let byName: [String: Int]

    package var path: String { file.path }

    private static let endOfCentralDirectorySignature: UInt32 = 0x0605_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    private static let zip64EndOfCentralDirectorySignature: UInt32 = 0x0606_4B50
    private static let centralEntrySignature: UInt32 = 0x0201_4B50
    private static let localHeaderSignature: UInt32 = 0x0403_4B50

    /// Opens and validates the archive structure of `file`.
    ///
    /// - Throws: ``TaskVectorError`` `.malformed` (naming the file, and the entry where there is one)
    ///   for anything that is not a well-formed ZIP, `.unsupported` for multi-disk archives.
    package init(file: MappedFile) throws {
        self.file = file
        let bytes = file.bytes
        let path = file.path
        func fail(_ message: String, entry: String? = nil) -> TaskVectorError {
            TaskVectorError(.malformed, file: path, tensor: entry, "not a valid ZIP archive: \(message)")
        }

        // End of central directory: 22 bytes plus a comment of up to 65535 bytes, at the very end.
        guard bytes.count >= 22 else {
            throw fail("\(bytes.count) bytes is too short for the 22-byte end-of-central-directory record")
        }
        var eocd: Int?
        var offset = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        while offset >= lowest {
            if bytes.readLE(UInt32.self, at: offset) == Self.endOfCentralDirectorySignature,
                let commentLength = bytes.readLE(UInt16.self, at: offset + 20),
                offset + 22 + Int(commentLength) <= bytes.count
            {
                eocd = offset
                break
            }
            offset -= 1
        }
        guard let eocd else {
            if bytes.readLE(UInt32.self, at: 0) == Self.localHeaderSignature {
                throw fail("the end-of-central-directory record is missing (the file is truncated?)")
            }
            throw fail("no end-of-central-directory record in the last \(bytes.count - lowest) bytes")
        }
        let disk = Int(bytes.readLE(UInt16.self, at: eocd + 4)!)
        let centralDisk = Int(bytes.readLE(UInt16.self, at: eocd + 6)!)
        var entriesOnDisk = Int(bytes.readLE(UInt16.self, at: eocd + 8)!)
        var entryCount = Int(bytes.readLE(UInt16.self, at: eocd + 10)!)
        var directorySize = Int(bytes.readLE(UInt32.self, at: eocd + 12)!)
        var directoryOffset = Int(bytes.readLE(UInt32.self, at: eocd + 16)!)
        var directoryLimit = eocd  // the central directory must end before this offset

        let needsZip64 =
            entryCount == 0xFFFF || entriesOnDisk == 0xFFFF || directorySize == 0xFFFF_FFFF
            || directoryOffset == 0xFFFF_FFFF
        if needsZip64 {
            let locator = eocd - 20
            guard locator >= 0, bytes.readLE(UInt32.self, at: locator) == Self.zip64LocatorSignature,
                let recordOffset64 = bytes.readLE(UInt64.self, at: locator + 8)
            else { throw fail("fields overflow but the ZIP64 end-of-central-directory locator is missing") }
            guard let record = Int(exactly: recordOffset64), record <= locator - 56,
                bytes.readLE(UInt32.self, at: record) == Self.zip64EndOfCentralDirectorySignature
            else { throw fail("the ZIP64 locator points to \(recordOffset64), where there is no ZIP64 record") }
            guard let disk64 = bytes.readLE(UInt32.self, at: record + 16),
                let centralDisk64 = bytes.readLE(UInt32.self, at: record + 20), disk64 == 0, centralDisk64 == 0
            else {
                throw TaskVectorError(.unsupported, file: path, "ZIP archives spanning several disks are not supported")
            }
            let onDisk64 = bytes.readLE(UInt64.self, at: record + 24)!
            let count64 = bytes.readLE(UInt64.self, at: record + 32)!
            let size64 = bytes.readLE(UInt64.self, at: record + 40)!
            let offset64 = bytes.readLE(UInt64.self, at: record + 48)!
            guard let onDisk = Int(exactly: onDisk64), let count = Int(exactly: count64),
                let size = Int(exactly: size64), let start = Int(exactly: offset64)
            else { throw fail("ZIP64 record fields exceed the file") }
            (entriesOnDisk, entryCount, directorySize, directoryOffset) = (onDisk, count, size, start)
            directoryLimit = record
        } else if disk != 0 || centralDisk != 0 {
            throw TaskVectorError(.unsupported, file: path, "ZIP archives spanning several disks are not supported")
        }
        guard entriesOnDisk == entryCount else {
            throw TaskVectorError(.unsupported, file: path, "ZIP archives spanning several disks are not supported")
        }
        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw fail(
                "central directory (\(directorySize) bytes at \(directoryOffset)) runs past its end record at \(directoryLimit)"
            )
        }
        guard entryCount <= directorySize / 46 else {
            throw fail("\(entryCount) entries cannot fit in a \(directorySize)-byte central directory")
        }

        // Central directory entries.
        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var byName: [String: Int] = [:]
        var p = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for index in 0..<entryCount {
            guard p <= directoryEnd - 46, bytes.readLE(UInt32.self, at: p) == Self.centralEntrySignature else {
                throw fail("central directory entry \(index) at offset \(p) has no valid signature")
            }
            let flags = bytes.readLE(UInt16.self, at: p + 8)!
            let method = bytes.readLE(UInt16.self, at: p + 10)!
            let crc = bytes.readLE(UInt32.self, at: p + 16)!
            var compressed = UInt64(bytes.readLE(UInt32.self, at: p + 20)!)
            var uncompressed = UInt64(bytes.readLE(UInt32.self, at: p + 24)!)
            let nameLength = Int(bytes.readLE(UInt16.self, at: p + 28)!)
            let extraLength = Int(bytes.readLE(UInt16.self, at: p + 30)!)
            let commentLength = Int(bytes.readLE(UInt16.self, at: p + 32)!)
            let startDisk = bytes.readLE(UInt16.self, at: p + 34)!
            var localOffset = UInt64(bytes.readLE(UInt32.self, at: p + 42)!)
            let next = p + 46 + nameLength + extraLength + commentLength
            guard next <= directoryEnd else {
                throw fail("central directory entry \(index) runs past the end of the central directory")
            }
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(p + 46)..<(p + 46 + nameLength)])
            let name = String(decoding: nameBytes, as: UTF8.self)
            // ZIP64 extended information: the fields that overflowed, in this order.
            var extra = p + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = bytes.readLE(UInt16.self, at: extra)!
                let size = Int(bytes.readLE(UInt16.self, at: extra + 2)!)
                guard extra + 4 + size <= extraEnd else { throw fail("extra field runs past its entry", entry: name) }
                if id == 0x0001 {
                    var field = extra + 4
                    func next64() throws -> UInt64 {
                        guard field + 8 <= extra + 4 + size, let value = bytes.readLE(UInt64.self, at: field) else {
                            throw fail("ZIP64 extra field is too short", entry: name)
                        }
                        field += 8
                        return value
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
                    if compressed == 0xFFFF_FFFF { compressed = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                }
                extra += 4 + size
            }
            guard startDisk == 0 || startDisk == 0xFFFF else {
                throw TaskVectorError(.unsupported, file: path, "ZIP archives spanning several disks are not supported")
            }
            guard let compressedSize = Int(exactly: compressed), let uncompressedSize = Int(exactly: uncompressed),
                let localHeaderOffset = Int(exactly: localOffset), localHeaderOffset < directoryOffset,
                compressedSize <= directoryOffset - localHeaderOffset
            else {
                throw fail(
                    "entry of \(compressed) bytes at offset \(localOffset) lies outside the \(directoryOffset) bytes "
                        + "before the central directory", entry: name)
            }
            guard byName.updateValue(entries.count, forKey: name) == nil else {
                throw fail("two entries are named '\(name)'", entry: name)
            }
            entries.append(
                Entry(
                    name: name, method: method, flags: flags, crc32: crc, compressedSize: compressedSize,
                    uncompressedSize: uncompressedSize, localHeaderOffset: localHeaderOffset))
            p = next
        }
        guard p == directoryEnd else {
            throw fail(
                "the central directory declares \(directorySize) bytes but its \(entryCount) entries use \(p - directoryOffset)"
            )
        }
        self.entries = entries
        self.byName = byName
        self.centralDirectoryOffset = directoryOffset
    }

    /// The entry called `name`, if present.
    package func entry(named name: String) -> Entry? {
        byName[name].map { entries[$0] }
    }

    /// The bytes of a stored entry: a view into the mapped file, valid as long as ``file`` lives.
    ///
    /// - Parameter verifyingChecksum: compare the data's CRC-32 with the central directory's.
    /// - Throws: ``TaskVectorError`` naming the file and entry: `.unsupported` for a compressed or
    ///   encrypted entry, `.malformed` for a bad local header, an out-of-range size or a CRC mismatch.
    package func data(of entry: Entry, verifyingChecksum: Bool = true) throws -> UnsafeRawBufferPointer {
        let bytes = file.bytes
        if entry.isEncrypted {
            throw TaskVectorError(
                .unsupported, file: path, tensor: entry.name,
                "ZIP entry is encrypted; compeft reads unencrypted entries only")
        }
        guard entry.method == 0 else {
            let method = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw TaskVectorError(
                .unsupported, file: path, tensor: entry.name,
                "ZIP entry is compressed (\(method)); compeft reads only stored (uncompressed) entries, as torch.save writes them"
            )
        }
        func fail(_ message: String) -> TaskVectorError {
            TaskVectorError(.malformed, file: path, tensor: entry.name, "not a valid ZIP archive: \(message)")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw fail("stored entry has compressed size \(entry.compressedSize) ≠ size \(entry.uncompressedSize)")
        }
        let header = entry.localHeaderOffset
        guard header <= centralDirectoryOffset - 30, bytes.readLE(UInt32.self, at: header) == Self.localHeaderSignature
        else { throw fail("no local header at offset \(header)") }
        let localMethod = bytes.readLE(UInt16.self, at: header + 8)!
        let nameLength = Int(bytes.readLE(UInt16.self, at: header + 26)!)
        let extraLength = Int(bytes.readLE(UInt16.self, at: header + 28)!)
        let start = header + 30 + nameLength + extraLength
        guard start <= centralDirectoryOffset, entry.compressedSize <= centralDirectoryOffset - start else {
            throw fail(
                "data (\(entry.compressedSize) bytes at \(start)) runs into the central directory at \(centralDirectoryOffset)"
            )
        }
        guard localMethod == entry.method,
            UnsafeRawBufferPointer(rebasing: bytes[(header + 30)..<(header + 30 + nameLength)]).elementsEqual(
                entry.name.utf8)
        else { throw fail("local header disagrees with the central directory") }
        let data = UnsafeRawBufferPointer(rebasing: bytes[start..<(start + entry.compressedSize)])
        if verifyingChecksum {
            let crc = CRC32.checksum(data)
            guard crc == entry.crc32 else {
                throw fail(
                    "CRC-32 is \(hex(crc)) but the central directory records \(hex(entry.crc32)) (corrupted data)")
            }
        }
        return data
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
