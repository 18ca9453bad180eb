#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import Foundation

/// The read-only bytes of an input: a memory-mapped file, or bytes read from a pipe.
///
/// Mapping lets compeft handle inputs larger than memory: pages are read on demand and can be
/// dropped by the kernel again. The buffer never changes after `init`, so sharing it between
/// threads is safe.
///
/// A file that is truncated while mapped (or a disk that fails under it) raises `SIGBUS` at the next
/// read of a page that is gone: the process dies unless it handles the signal. Each mapping is
/// recorded in ``MappedRegions`` so a handler can name the file; the `compeft` command turns the
/// signal into an I/O error naming it, removes its temporaries and exits with status 4. Containers
/// are never mapped (``FileByteSource``), so a serving process reading them cannot die this way.
public final class MappedFile: @unchecked Sendable {
    /// The path as the user gave it (`-` for standard input).
    public let path: String
    /// All bytes of the file.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?
    private let owned: UnsafeMutableRawBufferPointer?
    /// The mapping's key in ``MappedRegions``, which names the file when reading it raises `SIGBUS`.
    private let regionKey: Int?

    /// Maps the file at `path` read-only; `-` reads standard input to the end instead.
    ///
    /// - Throws: ``TaskVectorError`` with code `.io` naming the file when it cannot be opened or mapped,
    ///   or is not a regular file (refused without blocking; see ``RegularFile``).
    public init(path: String) throws {
        self.path = path
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
            data.copyBytes(to: buffer)
            owned = buffer
            mapping = nil
            regionKey = nil
            bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<data.count])
            return
        }
        let opened = try RegularFile.openForReading(path)
        let fd = opened.descriptor
        defer { close(fd) }
        let size = opened.size
        owned = nil
        if size == 0 {
            mapping = nil
            regionKey = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let raw = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), raw != MAP_FAILED else {
            throw TaskVectorError(.io, file: path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        mapping = raw
        bytes = UnsafeRawBufferPointer(start: raw, count: size)
        regionKey = MappedRegions.register(bytes, path: path)
    }

    /// Wraps bytes already in memory (copied).
    public init(path: String, contents: some Collection<UInt8>) {
        self.path = path
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(contents.count, 1), alignment: 64)
        _ = buffer.initializeMemory(as: UInt8.self, from: contents)
        owned = buffer
        mapping = nil
        regionKey = nil
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<contents.count])
    }

    /// Tells the kernel that the given byte range will not be needed again soon (out-of-core reads).
    public func release(range: Range<Int>) {
        guard let mapping, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // Only whole pages inside the range: a page shared with a neighbouring tensor may still be needed.
        let start = (range.lowerBound + page - 1) / page * page
        let end = min(bytes.count, range.upperBound) / page * page
        guard end > start else { return }
        _ = madvise(mapping + start, end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        if let regionKey { MappedRegions.unregister(regionKey) }
        if let mapping { munmap(mapping, bytes.count) }
        owned?.deallocate()
    }
}
