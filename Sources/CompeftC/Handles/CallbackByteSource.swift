import CCompeft
import TaskVector

/// The bytes of a container read through a caller's `compeft_reader` callbacks.
///
/// `release` runs exactly once, when the last reference goes: the handle's close, or a failed open.
final class CallbackByteSource: ByteSource, @unchecked Sendable {
    let name: String
    let size: Int
    private let readAt: @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutableRawPointer?, Int) -> Int32
    private let release: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    private let context: UnsafeMutableRawPointer?

    init(size: Int, name: String, readAt: @escaping @convention(c) (UnsafeMutableRawPointer?, UInt64, UnsafeMutableRawPointer?, Int) -> Int32,
         release: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?, context: UnsafeMutableRawPointer?) {
        self.size = size
        self.name = name
        self.readAt = readAt
        self.release = release
        self.context = context
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        guard offset >= 0, offset <= size, buffer.count <= size - offset else {
            throw TaskVectorError(.io, file: name, "bytes \(offset)..<\(offset + buffer.count) lie outside its \(size) bytes")
        }
        if buffer.isEmpty { return }
        let status = readAt(context, UInt64(offset), buffer.baseAddress, buffer.count)
        guard status == 0 else {
            throw TaskVectorError(.io, file: name, "the reader failed (\(status)) reading \(buffer.count) bytes at offset \(offset)")
        }
    }

    deinit { release?(context) }
}
