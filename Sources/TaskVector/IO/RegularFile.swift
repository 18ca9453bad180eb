#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Opens files by name for reading, refusing anything that is not a regular file before it can block
/// or have an effect.
///
/// `open(2)` of a FIFO without `O_NONBLOCK` waits for a writer, forever if none comes, before any
/// `fstat` could look at it; opening a device can rewind a tape or make a terminal the controlling
/// one; reading `/dev/zero` never ends. Every file compeft opens by name (weights, shards, indexes,
/// configs, containers, base models) goes through ``openForReading(_:)``:
///
/// 1. `stat` the path (following symbolic links, which may point anywhere the user can read) and
///    refuse a FIFO, socket, device or folder without opening it;
/// 2. open it with `O_NONBLOCK | O_NOCTTY`, so that a path swapped for a FIFO between the two steps
///    still cannot block;
/// 3. `fstat` the descriptor and refuse it unless it is still a regular file.
///
/// `-` (standard input) is not a name: callers handle it before asking for a file.
package enum RegularFile {
    /// The open descriptor and the file's size when it was opened.
    package struct Opened {
        package var descriptor: Int32
        package var size: Int
    }

    /// Opens `path` read-only; the caller owns (and closes) the descriptor.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming `path`: it does not exist or cannot be opened, or it
    ///   is not a regular file (the message says what it is).
    package static func openForReading(_ path: String) throws -> Opened {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw TaskVectorError(.io, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        try requireRegular(info.st_mode, path)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            throw TaskVectorError(.io, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        guard fstat(fd, &info) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw TaskVectorError(.io, file: path, "cannot stat: \(message)")
        }
        do {
            try requireRegular(info.st_mode, path)
        } catch {
            close(fd)
            throw error
        }
        // Regular files ignore O_NONBLOCK; clear it anyway so the descriptor reads as any other.
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return Opened(descriptor: fd, size: Int(info.st_size))
    }

    /// The whole of a small file at `path` (a JSON config or index), read through ``openForReading(_:)``.
    ///
    /// - Parameter limit: the most bytes accepted; a larger file is refused before anything is read.
    /// - Throws: ``TaskVectorError`` (`.io`) naming `path` when it cannot be opened, is not a regular
    ///   file, is larger than `limit`, or a read fails; `.malformed` never.
    package static func contents(of path: String, limit: Int) throws -> [UInt8] {
        let opened = try openForReading(path)
        defer { close(opened.descriptor) }
        guard opened.size <= limit else {
            throw TaskVectorError(.io, file: path, "is \(opened.size) bytes, more than the \(limit) accepted for this file")
        }
        var bytes = [UInt8](repeating: 0, count: opened.size)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(opened.descriptor, $0.baseAddress! + done, $0.count - done) }
            if n > 0 {
                done += n
            } else if n == 0 {
                bytes.removeSubrange(done...)  // the file shrank while being read: what was there is all there is
            } else if errno != EINTR {
                throw TaskVectorError(.io, file: path, "read failed: \(String(cString: strerror(errno)))")
            }
        }
        return bytes
    }

    /// Whether `mode` is a regular file; otherwise the error says what the path is instead.
    private static func requireRegular(_ mode: mode_t, _ path: String) throws {
        let kind: String
        switch mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR: kind = "a folder"
        case S_IFIFO: kind = "a FIFO (named pipe)"
        case S_IFSOCK: kind = "a socket"
        case S_IFCHR: kind = "a character device"
        case S_IFBLK: kind = "a block device"
        default: kind = "not a file"
        }
        throw TaskVectorError(.io, file: path, "not a regular file (it is \(kind)); compeft reads regular files only")
    }
}
