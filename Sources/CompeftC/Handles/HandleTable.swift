import CCompeft

/// The open containers by handle. Handles are never reused, so a stale or doubly closed handle is
/// always recognised; each carries a tag in its top 16 bits so that a small integer passed by mistake
/// (an index, a status) is never a valid handle.
enum HandleTable {
    private static let tag: UInt64 = 0xC9EF << 48
    private static let serialMask: UInt64 = (1 << 48) - 1
    private static let lock = PthreadLock()
    /// Guarded by `lock`.
    nonisolated(unsafe) private static var nextSerial: UInt64 = 1
    /// Guarded by `lock`.
    nonisolated(unsafe) private static var open: [compeft_handle: OpenContainer] = [:]

    /// Registers `container` and returns its new handle.
    static func insert(_ container: OpenContainer) throws(ABIError) -> compeft_handle {
        try lock.withLock { () throws(ABIError) -> compeft_handle in
            guard nextSerial <= serialMask else {
                throw ABIError(status: .unsupported, message: "all \(serialMask) handles of this process have been used")
            }
            let handle = tag | nextSerial
            nextSerial += 1
            open[handle] = container
            return handle
        }
    }

    /// The container of an open handle. The caller holds a strong reference, so a concurrent close
    /// cannot free it while the call runs.
    static func container(_ handle: compeft_handle) throws(ABIError) -> OpenContainer {
        guard let container = lock.withLock({ open[handle] }) else { throw .badHandle(handle) }
        return container
    }

    /// Forgets `handle`; its container is freed when the last call using it returns (here, outside
    /// the lock, when it was the last).
    static func remove(_ handle: compeft_handle) throws(ABIError) {
        let removed = lock.withLock { open.removeValue(forKey: handle) }
        guard removed != nil else { throw .badHandle(handle) }
    }
}
