#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import Foundation

/// Random-access bytes that are read, not mapped: a file through `pread`, bytes in memory, or (in
/// other targets) a blob on a server read by ranges.
///
/// Readers of containers hold a source instead of a mapping so that a file that shrinks or changes
/// under them is an error they can report, never a `SIGBUS` that kills the process that links them.
///
/// Conforming types are immutable after `init` and safe to share between threads.
public protocol ByteSource: Sendable {
    /// What to call the source in errors: the path as the user gave it, or a reference.
    var name: String { get }
    /// The size in bytes, fixed when the source was opened.
    var size: Int { get }
    /// Fills `buffer` with the bytes at `offset ..< offset + buffer.count`.
    ///
    /// - Throws: ``TaskVectorError`` with code `.io`, naming the source, when the range cannot be read
    ///   in full (the file shrank, a read failed); never returns partial data.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws
}

extension ByteSource {
    /// The bytes at `range`, which must lie inside ``size``.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) as ``read(into:at:)`` does, or when `range` does not lie
    ///   inside the source.
    public func bytes(_ range: Range<Int>) throws -> [UInt8] {
        guard range.lowerBound >= 0, range.upperBound <= size else {
            throw TaskVectorError(.io, file: name, "bytes \(range.lowerBound)..<\(range.upperBound) lie outside its \(size) bytes")
        }
        var out = [UInt8](repeating: 0, count: range.count)
        try out.withUnsafeMutableBytes { try read(into: $0, at: range.lowerBound) }
        return out
    }
}

/// A regular file read with `pread`. The file stays open, so a file replaced by `rename` keeps being
/// read as it was when opened; a file truncated in place gives an error naming it.
public final class FileByteSource: ByteSource, @unchecked Sendable {
    public let name: String
    public let size: Int
    private let descriptor: Int32

    /// Opens `path` for reading.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming the file when it cannot be opened or is not a
    ///   regular file (a FIFO, a device or a folder are refused before anything is read from them).
    public init(path: String) throws {
        name = path
        let opened = try RegularFile.openForReading(path)
        descriptor = opened.descriptor
        size = opened.size
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        guard offset >= 0, offset <= size, buffer.count <= size - offset else {
            throw TaskVectorError(.io, file: name, "bytes \(offset)..<\(offset + buffer.count) lie outside its \(size) bytes")
        }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n > 0 {
                done += n
            } else if n == 0 {
                throw TaskVectorError(.io, file: name,
                                      "file changed while open: it ends before byte \(offset + buffer.count) (it had \(size) bytes when opened)")
            } else if errno != EINTR {
                throw TaskVectorError(.io, file: name, "read failed at byte \(offset + done): \(String(cString: strerror(errno)))")
            }
        }
    }

    deinit { close(descriptor) }
}

/// Bytes held in memory (standard input read to the end, a container built in memory).
public final class MemoryByteSource: ByteSource, @unchecked Sendable {
    public let name: String
    public let contents: [UInt8]
    public var size: Int { contents.count }

    public init(name: String, contents: [UInt8]) {
        self.name = name
        self.contents = contents
    }

    /// Reads standard input to its end.
    public static func standardInput(name: String = "-") -> MemoryByteSource {
        MemoryByteSource(name: name, contents: [UInt8](FileHandle.standardInput.readDataToEndOfFile()))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        guard offset >= 0, offset <= contents.count, buffer.count <= contents.count - offset else {
            throw TaskVectorError(.io, file: name, "bytes \(offset)..<\(offset + buffer.count) lie outside its \(contents.count) bytes")
        }
        contents.withUnsafeBytes { src in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<(offset + buffer.count)]))
        }
    }
}
