import Dispatch
import Foundation

/// Runs `body(worker, item)` for every item in `0..<count` on up to `threads` threads; each worker
/// pulls the next item from a shared counter, so uneven items balance. Results must not depend on
/// which worker ran an item (callers keep per-item results and combine them in item order).
package func parallelFor(count: Int, threads: Int, _ body: @Sendable (_ worker: Int, _ item: Int) -> Void) {
    let workers = max(1, min(threads, count))
    if workers == 1 {
        for item in 0..<count { body(0, item) }
        return
    }
    let next = ItemCounter()
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        while let item = next.take(below: count) { body(worker, item) }
    }
}

/// A lock-protected counter handing out work items.
final class ItemCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// Slots shared with worker threads; each item writes only its own slot (no locking, no exclusivity
/// checks: the storage is a raw buffer).
package final class UnsafeSlots<Value>: @unchecked Sendable {
    private let storage: UnsafeMutableBufferPointer<Value>
    package init(repeating value: Value, count: Int) {
        storage = .allocate(capacity: count)
        storage.initialize(repeating: value)
    }
    deinit {
        storage.deinitialize()
        storage.deallocate()
    }
    package var count: Int { storage.count }
    package subscript(i: Int) -> Value {
        get { storage[i] }
        set { storage[i] = newValue }
    }
}

/// Owns a non-copyable value for a worker thread.
package final class WorkerBox<Value: ~Copyable>: @unchecked Sendable {
    package var value: Value
    package init(_ value: consuming Value) { self.value = value }
}

/// The number of threads to use by default: the machine's active cores.
public var defaultThreadCount: Int { ProcessInfo.processInfo.activeProcessorCount }
