#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import Foundation

/// Writes an output through a temporary file in the same folder and renames it into place, so a
/// failure never leaves a partial file and never touches an input.
///
/// `-` writes to standard output directly (there is nothing to rename).
public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String?
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var finished = false
    /// The output mapped by ``mapForWriting(size:)``, until commit or abandon.
    private var mapping: UnsafeMutableRawBufferPointer?
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0

    private static let bufferLimit = 1 << 20

    /// Opens a temporary file beside `path`.
    ///
    /// - Parameter overwrite: replace an existing `path` on commit; otherwise an existing file is an error.
    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        if path == "-" {
            temporaryPath = nil
            fd = STDOUT_FILENO
            return
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw TaskVectorError(.io, file: path, "is a directory; give a file path")
            }
            if !overwrite {
                throw TaskVectorError(.io, file: path, "already exists; pass --force to overwrite it")
            }
        }
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let template = folder + "/." + url.lastPathComponent + ".compeft-XXXXXX"
        var chars = Array(template.utf8CString)
        let descriptor = chars.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw TaskVectorError(.io, file: path, "cannot create a temporary file in '\(folder)': \(String(cString: strerror(errno)))")
        }
        fd = descriptor
        temporaryPath = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The temporary file, for a library that must write it by name (libhdf5); `nil` for standard output.
    ///
    /// Whatever is written there is synced and renamed into place by ``commit()`` like bytes given to ``write(_:)``.
    package var temporaryFilePath: String? { temporaryPath }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(mapping == nil, "write after mapForWriting")
        bytesWritten += UInt64(bytes.count)
        if buffer.count + bytes.count <= Self.bufferLimit {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= Self.bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw TaskVectorError(.io, file: path, "write failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Flushes, syncs and renames the temporary file into place.
    /// Reserves `size` bytes of disk for the output, sizes it and maps it writable, so producers can
    /// fill it in place and in parallel instead of streaming through `write`; nil when the output is
    /// standard output, `size` is 0, or the file system cannot reserve space (then nothing changed).
    ///
    /// Bytes already written stay at the start; the caller fills the rest. The mapping is written
    /// back and removed by ``commit()`` (or dropped by ``abandon()``); no `write` may follow.
    ///
    /// - Throws: ``TaskVectorError`` with code `.io` when the file cannot be sized or mapped.
    public func mapForWriting(size: Int) throws -> UnsafeMutableRawBufferPointer? {
        guard temporaryPath != nil, mapping == nil else { return nil }
        try flush()
        precondition(size >= Int(bytesWritten), "the mapped size is smaller than what was written")
        guard size > 0 else { return nil }
        // Reserve the blocks first: a full disk is then this clear error, not a SIGBUS on some later store
        // into the mapping. Where nothing can be reserved (EOPNOTSUPP, EINVAL) the file is left as it
        // was and the caller streams instead.
        let reserved = posix_fallocate(fd, 0, off_t(size))
        if reserved == EOPNOTSUPP || reserved == EINVAL { return nil }
        if reserved != 0 {
            throw TaskVectorError(.io, file: path, "cannot reserve \(size) bytes for the output: \(String(cString: strerror(reserved)))")
        }
        if ftruncate(fd, off_t(size)) != 0 {
            throw TaskVectorError(.io, file: path, "cannot size the output to \(size) bytes: \(String(cString: strerror(errno)))")
        }
        guard let raw = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            throw TaskVectorError(.io, file: path, "cannot map the output (\(size) bytes): \(String(cString: strerror(errno)))")
        }
        let region = UnsafeMutableRawBufferPointer(start: raw, count: size)
        mapping = region
        bytesWritten = UInt64(size)
        return region
    }

    /// Starts writing the pages of `range` (bytes of a mapped output) back and unmaps them, so filling
    /// a large output keeps a bounded resident set and the final sync has little left to do. The data
    /// stays in the file.
    public func releaseMapped(_ range: Range<Int>) {
        guard let mapping, let base = mapping.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = min(mapping.count, range.upperBound) / page * page
        guard end > start else { return }
        // Dirty pages of a shared mapping stay in the page cache (and are written back) after this.
        _ = madvise(base + start, end - start, Int32(MADV_DONTNEED))
        #if os(Linux)
        // Linux starts writing the range's dirty pages to disk on this advice, without waiting, so the
        // sync in `commit` has little left to do.
        _ = posix_fadvise(fd, off_t(start), off_t(end - start), POSIX_FADV_DONTNEED)
        #endif
    }

    private func unmap() {
        if let mapping, let base = mapping.baseAddress { munmap(base, mapping.count) }
        mapping = nil
    }

    public func commit() throws {
        try flush()
        finished = true
        if let mapping, let base = mapping.baseAddress, msync(base, mapping.count, MS_SYNC) != 0 {
            let message = String(cString: strerror(errno))
            unmap()
            if let temporaryPath {
                close(fd)
                unlink(temporaryPath)
            }
            throw TaskVectorError(.io, file: path, "cannot write the mapped output back: \(message)")
        }
        unmap()
        guard let temporaryPath else { return }
        fchmod(fd, 0o644)
        if fsync(fd) != 0 {
            let message = String(cString: strerror(errno))
            close(fd)
            unlink(temporaryPath)
            throw TaskVectorError(.io, file: path, "fsync failed: \(message)")
        }
        close(fd)
        if rename(temporaryPath, path) != 0 {
            let message = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw TaskVectorError(.io, file: path, "cannot rename into place: \(message)")
        }
    }

    /// Removes the temporary file; the destination is untouched.
    public func abandon() {
        guard !finished else { return }
        finished = true
        unmap()
        guard let temporaryPath else { return }
        close(fd)
        unlink(temporaryPath)
    }

    deinit { abandon() }
}

/// Writes a whole output folder atomically: files go into a temporary sibling folder that is renamed
/// into place at the end.
public final class AtomicDirectoryWriter {
    public let path: String
    public let temporaryPath: String
    private var finished = false

    public init(path: String, overwrite: Bool = false) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
            if !overwrite {
                throw TaskVectorError(.io, file: path, "already exists; pass --force to replace it")
            }
            if !isDirectory.boolValue {
                throw TaskVectorError(.io, file: path, "exists and is not a folder")
            }
        }
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var chars = Array((folder + "/." + url.lastPathComponent + ".compeft-XXXXXX").utf8CString)
        guard chars.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TaskVectorError(.io, file: path, "cannot create a temporary folder in '\(folder)': \(String(cString: strerror(errno)))")
        }
        temporaryPath = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        chmod(temporaryPath, 0o755)
    }

    /// A writer for one file inside the folder.
    public func file(_ name: String) throws -> AtomicFileWriter {
        try AtomicFileWriter(path: temporaryPath + "/" + name)
    }

    public func commit() throws {
        finished = true
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            // Replace: move the old folder aside first so a failure can be rolled back.
            let aside = temporaryPath + ".old"
            guard rename(path, aside) == 0 else {
                throw TaskVectorError(.io, file: path, "cannot replace: \(String(cString: strerror(errno)))")
            }
            guard rename(temporaryPath, path) == 0 else {
                let message = String(cString: strerror(errno))
                _ = rename(aside, path)
                throw TaskVectorError(.io, file: path, "cannot rename into place: \(message)")
            }
            try? fm.removeItem(atPath: aside)
            return
        }
        guard rename(temporaryPath, path) == 0 else {
            let message = String(cString: strerror(errno))
            try? fm.removeItem(atPath: temporaryPath)
            throw TaskVectorError(.io, file: path, "cannot rename into place: \(message)")
        }
    }

    public func abandon() {
        guard !finished else { return }
        finished = true
        try? FileManager.default.removeItem(atPath: temporaryPath)
    }

    deinit { abandon() }
}
