import CCompeft
import Synchronization

/// The open containers by handle. Handles are never reused, so a stale or doubly closed handle is
/// always recognised; each carries a tag in its top 16 bits so that a small integer passed by mistake
/// (an index, a status) is never a valid handle.
enum HandleTable {
    private struct State {
        var nextSerial: UInt64 = 1
        var open: [compeft_handle: OpenContainer] = [:]
    }

    private static let tag: UInt64 = 0xC9EF << 48
    private static let serialMask: UInt64 = (1 << 48) - 1
    private static let state = Mutex(State())

    /// Registers `container` and returns its new handle.
    static func insert(_ container: OpenContainer) throws(ABIError) -> compeft_handle {
        try state.withLock { (state) throws(ABIError) -> compeft_handle in
            guard state.nextSerial <= serialMask else {
                throw ABIError(status: .unsupported, message: "all \(serialMask) handles of this process have been used")
            }
            let handle = tag | state.nextSerial
            state.nextSerial += 1
            state.open[handle] = container
            return handle
        }
    }

    /// The container of an open handle. The caller holds a strong reference, so a concurrent close
    /// cannot free it while the call runs.
    static func container(_ handle: compeft_handle) throws(ABIError) -> OpenContainer {
        guard let container = state.withLock({ $0.open[handle] }) else { throw .badHandle(handle) }
        return container
    }

    /// Forgets `handle`; its container is freed when the last call using it returns.
    static func remove(_ handle: compeft_handle) throws(ABIError) {
        let removed = state.withLock { $0.open.removeValue(forKey: handle) }
        guard removed != nil else { throw .badHandle(handle) }
    }
}
