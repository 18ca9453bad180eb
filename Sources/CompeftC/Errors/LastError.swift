#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The message of the last failing call, one per thread, as a C string the thread owns (freed when the
/// next failure replaces it, or when the thread exits).
enum LastError {
    /// The thread-specific slot; nil only when the process has run out of pthread keys, and then no
    /// message is kept (the status codes still say what happened).
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key) { free($0) } == 0 ? key : nil
    }()

    nonisolated(unsafe) private static let empty = StaticCString.make("")
    nonisolated(unsafe) private static let unavailable =
        StaticCString.make("(no message: the process has no pthread key left for compeft's error messages)")

    /// Replaces this thread's message.
    static func set(_ message: String) {
        guard let key else { return }
        let old = pthread_getspecific(key)
        _ = pthread_setspecific(key, strdup(message))
        free(old)
    }

    /// This thread's message, or "" when no call has failed on it.
    static var current: UnsafePointer<CChar> {
        guard let key else { return unavailable }
        guard let raw = pthread_getspecific(key) else { return empty }
        return UnsafePointer(raw.assumingMemoryBound(to: CChar.self))
    }
}
