/// Where a writer's bytes go, in order: a file renamed into place when complete (``AtomicFileWriter``),
/// memory (``MemoryByteSink``), or nowhere, only counted (``CountingByteSink``). Other targets add
/// their own (an upload to a registry).
///
/// A sink receives bytes front to back and is never asked to seek, so a pipe, a socket or a counter
/// can be one. A writer calls ``commit()`` once everything is written; until then the bytes are not
/// final, and ``abandon()`` drops them without touching any existing destination.
public protocol ByteSink: AnyObject {
    /// What to call the destination in errors: the path as the user gave it, or a description.
    var name: String { get }
    /// Bytes accepted so far.
    var bytesWritten: UInt64 { get }
    /// Appends `bytes`.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming the destination when the bytes cannot be taken.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Makes what was written final (a file is synced and renamed into place). Nothing may be written after.
    ///
    /// - Throws: ``TaskVectorError`` (`.io`) naming the destination; the destination is then untouched.
    func commit() throws
    /// Drops what was written; an existing destination is left as it was. Does nothing after ``commit()``.
    func abandon()
}

extension ByteSink {
    /// Appends `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

/// A sink that keeps the bytes in memory: a container built for a caller that wants its bytes (a
/// binding, an upload, a test).
public final class MemoryByteSink: ByteSink {
    public let name: String
    /// Everything written so far (emptied by ``abandon()``).
    public private(set) var bytes: [UInt8] = []
    /// Whether ``commit()`` was called.
    public private(set) var isCommitted = false

    /// - Parameter name: what errors call the destination.
    public init(name: String = "(memory)") {
        self.name = name
    }

    public var bytesWritten: UInt64 { UInt64(bytes.count) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!isCommitted, "write after commit")
        self.bytes.append(contentsOf: bytes)
    }

    public func commit() throws { isCommitted = true }

    public func abandon() {
        guard !isCommitted else { return }
        bytes = []
    }
}

/// A sink that only counts: the size an output would have, without storing it anywhere.
public final class CountingByteSink: ByteSink {
    public let name: String
    public private(set) var bytesWritten: UInt64 = 0

    /// - Parameter name: what errors call the destination.
    public init(name: String = "(counted)") {
        self.name = name
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += UInt64(bytes.count)
    }

    public func commit() throws {}

    public func abandon() {}
}
