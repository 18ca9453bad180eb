#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The message of the last failing call, one per thread, as a C string the thread owns (freed when the
/// next failure replaces it, or when the thread exits).
enum LastError {
    /// The thread-specific slot; nil only when the process has run out of keys, and then every thread
    /// shares `shared` (a message may be replaced by another thread's, but nothing fails).
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key) { free($0) } == 0 ? key : nil
    }()

    private static let shared = Mutex<UInt?>(nil)

    nonisolated(unsafe) private static let empty: UnsafeMutablePointer<CChar> = strdup("")!

    /// Replaces this thread's message.
    static func set(_ message: String) {
        let copy = strdup(message)
        if let key {
            let old = pthread_getspecific(key)
            _ = pthread_setspecific(key, copy)
            free(old)
        } else {
            // Addresses are kept as integers so the Mutex holds a Sendable value.
            let old = shared.withLock { slot in
                defer { slot = copy.map { UInt(bitPattern: $0) } }
                return slot
            }
            // The previous shared message is leaked on purpose: another thread may still be reading it.
            _ = old
        }
    }

    /// This thread's message, or "" when no call has failed on it.
    static var current: UnsafePointer<CChar> {
        let raw: UnsafeMutableRawPointer? =
            if let key { pthread_getspecific(key) } else { shared.withLock { $0 }.flatMap { UnsafeMutableRawPointer(bitPattern: $0) } }
        guard let raw else { return UnsafePointer(empty) }
        return UnsafePointer(raw.assumingMemoryBound(to: CChar.self))
    }
}
