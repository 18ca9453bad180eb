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
    public func commit() throws {
        try flush()
        finished = true
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
