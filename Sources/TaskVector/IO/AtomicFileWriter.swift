#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import Foundation

/// Writes an output through a temporary file in the same folder and renames it into place, so a
/// failure never leaves a partial file, never touches an input, and leaves the destination as it was
/// until the final rename.
///
/// On Linux the temporary is an unnamed file (`O_TMPFILE`) that ``commit()`` links into place: it has
/// no name until then, so a process that dies, even of `SIGKILL`, leaves nothing behind. Where the
/// file system cannot create one, the temporary is a hidden `.<name>.compeft-XXXXXX` beside the
/// destination, registered with ``TemporaryFiles`` so that a program removing them on signals
/// (the `compeft` command does, on SIGINT, SIGTERM and SIGHUP) leaves nothing behind either.
///
/// `-` writes to standard output directly (there is nothing to rename).
public final class AtomicFileWriter {
    public let path: String
    /// Where the bytes go until ``commit()``.
    private enum Temporary {
        case standardOutput
        /// An `O_TMPFILE` in `folder`, linked into place on commit.
        case unnamed(folder: String)
        /// A hidden file beside the destination, renamed into place on commit.
        case named(String, TemporaryFiles.Token)
    }

    private let temporary: Temporary
    private let overwrite: Bool
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var finished = false
    /// The output mapped by ``mapForWriting(size:)``, until commit or abandon.
    private var mapping: UnsafeMutableRawBufferPointer?
    private var mappingKey: Int?
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0

    private static let bufferLimit = 1 << 20

    /// Opens a temporary file beside `path`.
    ///
    /// - Parameter overwrite: replace an existing `path` on commit; otherwise an existing file is an error.
    public convenience init(path: String, overwrite: Bool = false) throws {
        try self.init(path: path, overwrite: overwrite, named: false)
    }

    /// Opens a temporary file beside `path`; `named` asks for a hidden named file even where an
    /// unnamed one could be made, for a library that opens the file by a name it resolves (libhdf5
    /// takes the real path of what it opens, which an unnamed file does not have).
    package init(path: String, overwrite: Bool, named: Bool) throws {
        self.path = path
        self.overwrite = overwrite
        if path == "-" {
            temporary = .standardOutput
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
        if !named, let descriptor = Self.openUnnamed(in: folder) {
            fd = descriptor
            temporary = .unnamed(folder: folder)
            return
        }
        // Created and registered while removal is held off: a signal cannot fall between the two.
        let made: (Int32, String, TemporaryFiles.Token)? = TemporaryFiles.withRemovalHeld { registry in
            var chars = Array((folder + "/." + url.lastPathComponent + ".compeft-XXXXXX").utf8CString)
            let descriptor = chars.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard descriptor >= 0 else { return nil }
            let name = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return (descriptor, name, registry.add(name, isFolder: false))
        }
        guard let (descriptor, name, token) = made else {
            throw TaskVectorError(.io, file: path, "cannot create a temporary file in '\(folder)': \(String(cString: strerror(errno)))")
        }
        fd = descriptor
        temporary = .named(name, token)
    }

    /// An unnamed file in `folder`, where the system can make one and later link it by its
    /// `/proc/self/fd` name (which needs no privilege, unlike `AT_EMPTY_PATH`).
    private static func openUnnamed(in folder: String) -> Int32? {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        // O_TMPFILE is __O_TMPFILE | O_DIRECTORY; Swift's Glibc does not export it (a GNU extension).
        let oTmpFile: Int32 = 0o20000000 | O_DIRECTORY
        guard access("/proc/self/fd", X_OK) == 0 else { return nil }
        let fd = open(folder.isEmpty ? "." : folder, oTmpFile | O_RDWR | O_CLOEXEC, 0o600)
        return fd >= 0 ? fd : nil
        #else
        return nil
        #endif
    }

    /// The temporary file, for a library that must write it by name (libhdf5, with a writer made
    /// `named`): the hidden file's path, or an unnamed file's `/proc/self/fd` path; `nil` for
    /// standard output.
    ///
    /// Whatever is written there is synced and renamed into place by ``commit()`` like bytes given to ``write(_:)``.
    package var temporaryFilePath: String? {
        switch temporary {
        case .standardOutput: nil
        case .unnamed: "/proc/self/fd/\(fd)"
        case .named(let name, _): name
        }
    }

    private var writesAFile: Bool {
        if case .standardOutput = temporary { return false }
        return true
    }

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

    /// Reserves `size` bytes of disk for the output, sizes it and maps it writable, so producers can
    /// fill it in place and in parallel instead of streaming through `write`; nil when the output is
    /// standard output, `size` is 0, or the file system cannot reserve space (then nothing changed).
    ///
    /// Bytes already written stay at the start; the caller fills the rest. The mapping is written
    /// back and removed by ``commit()`` (or dropped by ``abandon()``); no `write` may follow.
    ///
    /// - Throws: ``TaskVectorError`` with code `.io` when the file cannot be sized or mapped.
    public func mapForWriting(size: Int) throws -> UnsafeMutableRawBufferPointer? {
        guard writesAFile, mapping == nil else { return nil }
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
        mappingKey = MappedRegions.register(UnsafeRawBufferPointer(region), path: path, isOutput: true)
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
        if let mappingKey { MappedRegions.unregister(mappingKey) }
        mapping = nil
        mappingKey = nil
    }

    /// Flushes, syncs and moves the temporary file into place (a rename, or a link of the unnamed
    /// file), replacing an existing destination only when `overwrite` was given.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming the destination when a write, the sync or the
    ///   move fails; the temporary is gone then and the destination untouched.
    public func commit() throws {
        do {
            try flush()
        } catch {
            abandon()
            throw error
        }
        finished = true
        if let mapping, let base = mapping.baseAddress, msync(base, mapping.count, MS_SYNC) != 0 {
            let message = String(cString: strerror(errno))
            discardTemporary()
            throw TaskVectorError(.io, file: path, "cannot write the mapped output back: \(message)")
        }
        unmap()
        guard writesAFile else { return }
        fchmod(fd, 0o644)
        if fsync(fd) != 0 {
            let message = String(cString: strerror(errno))
            discardTemporary()
            throw TaskVectorError(.io, file: path, "fsync failed: \(message)")
        }
        defer { close(fd) }
        switch temporary {
        case .standardOutput:
            return
        case .named(let name, let token):
            let failure: Int32? = TemporaryFiles.withRemovalHeld { registry in
                defer {
                    unlink(name)
                    registry.remove(token)
                }
                // Without `overwrite`, a hard link: unlike rename(2) it refuses to replace a file that
                // appeared meanwhile. File systems without hard links get the rename.
                if !overwrite {
                    if link(name, path) == 0 { return nil }
                    if errno == EEXIST { return EEXIST }
                }
                return rename(name, path) == 0 ? nil : errno
            }
            if failure == EEXIST {
                throw TaskVectorError(.io, file: path, "already exists (it appeared while compeft wrote); pass --force to overwrite it")
            }
            if let failure {
                throw TaskVectorError(.io, file: path, "cannot rename into place: \(String(cString: strerror(failure)))")
            }
        case .unnamed(let folder):
            try linkIntoPlace(folder: folder)
        }
    }

    /// Gives the unnamed temporary its name: the destination itself when it does not exist (so a file
    /// that appeared meanwhile is never replaced without `overwrite`), else a hidden name renamed over it.
    private func linkIntoPlace(folder: String) throws {
        let source = "/proc/self/fd/\(fd)"
        if linkat(AT_FDCWD, source, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 { return }
        guard errno == EEXIST else {
            throw TaskVectorError(.io, file: path, "cannot link the output into place: \(String(cString: strerror(errno)))")
        }
        guard overwrite else {
            throw TaskVectorError(.io, file: path, "already exists (it appeared while compeft wrote); pass --force to overwrite it")
        }
        let base = URL(fileURLWithPath: path).lastPathComponent
        // Linked and renamed while removal is held: a signal finds the hidden name gone or never made.
        let failure: String? = TemporaryFiles.withRemovalHeld { _ in
            for _ in 0..<100 {
                let hidden = folder + "/." + base + ".compeft-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
                guard linkat(AT_FDCWD, source, AT_FDCWD, hidden, AT_SYMLINK_FOLLOW) == 0 else {
                    if errno == EEXIST { continue }
                    return "cannot link the output into place: \(String(cString: strerror(errno)))"
                }
                guard rename(hidden, path) == 0 else {
                    let message = String(cString: strerror(errno))
                    unlink(hidden)
                    return "cannot rename into place: \(message)"
                }
                return nil
            }
            return "cannot find a free temporary name in '\(folder)'"
        }
        if let failure { throw TaskVectorError(.io, file: path, failure) }
    }

    /// Unmaps, closes and removes the temporary file.
    private func discardTemporary() {
        unmap()
        switch temporary {
        case .standardOutput:
            return
        case .unnamed:
            close(fd)
        case .named(let name, let token):
            close(fd)
            unlink(name)
            TemporaryFiles.unregister(token)
        }
    }

    /// Removes the temporary file; the destination is untouched.
    public func abandon() {
        guard !finished else { return }
        finished = true
        discardTemporary()
    }

    deinit { abandon() }
}

/// Writes a whole output folder atomically: files go into a temporary sibling folder
/// `.<name>.compeft-XXXXXX` that is renamed into place at the end.
///
/// The temporary folder is registered with ``TemporaryFiles``, so a program that removes them on
/// signals leaves nothing behind; a process killed outright (`SIGKILL`, a crash) leaves it. Its files
/// are written by ``AtomicFileWriter``s, so each is complete or absent.
public final class AtomicDirectoryWriter {
    public let path: String
    public let temporaryPath: String
    private let token: TemporaryFiles.Token
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
        // Created and registered while removal is held off: a signal cannot fall between the two.
        let made: (String, TemporaryFiles.Token)? = TemporaryFiles.withRemovalHeld { registry in
            var chars = Array((folder + "/." + url.lastPathComponent + ".compeft-XXXXXX").utf8CString)
            guard chars.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { return nil }
            let name = String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return (name, registry.add(name, isFolder: true))
        }
        guard let (name, token) = made else {
            throw TaskVectorError(.io, file: path, "cannot create a temporary folder in '\(folder)': \(String(cString: strerror(errno)))")
        }
        temporaryPath = name
        self.token = token
        chmod(temporaryPath, 0o755)
    }

    /// A writer for one file inside the folder.
    public func file(_ name: String) throws -> AtomicFileWriter {
        try AtomicFileWriter(path: temporaryPath + "/" + name)
    }

    /// Renames the folder into place; an existing destination (only with `overwrite`) is moved aside
    /// first and removed after.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) when a rename fails; the destination is then as it was
    ///   and the temporary folder is removed.
    public func commit() throws {
        finished = true
        let fm = FileManager.default
        // The renames run while removal on a signal is held off: a signal sees the old destination and
        // the temporary folder, or the new destination and the old one aside (registered), never a gap.
        let outcome: Result<TemporaryFiles.Token?, TaskVectorError> = TemporaryFiles.withRemovalHeld { registry in
            guard fm.fileExists(atPath: path) else {
                guard rename(temporaryPath, path) == 0 else {
                    return .failure(TaskVectorError(.io, file: path, "cannot rename into place: \(String(cString: strerror(errno)))"))
                }
                registry.remove(token)
                return .success(nil)
            }
            let aside = temporaryPath + ".old"
            guard rename(path, aside) == 0 else {
                return .failure(TaskVectorError(.io, file: path, "cannot replace: \(String(cString: strerror(errno)))"))
            }
            guard rename(temporaryPath, path) == 0 else {
                let message = String(cString: strerror(errno))
                _ = rename(aside, path)
                return .failure(TaskVectorError(.io, file: path, "cannot rename into place: \(message)"))
            }
            registry.remove(token)
            return .success(registry.add(aside, isFolder: true))
        }
        switch outcome {
        case .success(let aside):
            if let aside {
                try? fm.removeItem(atPath: temporaryPath + ".old")
                TemporaryFiles.unregister(aside)
            }
        case .failure(let error):
            try? fm.removeItem(atPath: temporaryPath)
            TemporaryFiles.unregister(token)
            throw error
        }
    }

    /// Removes the temporary folder; the destination is untouched.
    public func abandon() {
        guard !finished else { return }
        finished = true
        try? FileManager.default.removeItem(atPath: temporaryPath)
        TemporaryFiles.unregister(token)
    }

    deinit { abandon() }
}
