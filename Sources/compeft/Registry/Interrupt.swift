#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// Ctrl-C (SIGINT) and SIGTERM during registry work: the first signal cancels every request in flight,
/// so the command fails with "interrupted", its temporary output is removed, and it exits 130; a second
/// signal exits at once.
enum Interrupt {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handlers: [@Sendable () -> Void] = []
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    nonisolated(unsafe) private static var signalled = false

    /// Runs `handler` on the first SIGINT or SIGTERM.
    static func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock {
            handlers.append(handler)
            guard sources.isEmpty else { return }
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { fire() }
                source.resume()
                sources.append(source)
            }
        }
    }

    /// Gives SIGINT and SIGTERM back their default action (the network part of a command is over).
    static func release() {
        lock.withLock {
            for s in sources { s.cancel() }
            sources.removeAll()
            handlers.removeAll()
            signal(SIGINT, SIG_DFL)
            signal(SIGTERM, SIG_DFL)
        }
    }

    private static func fire() {
        let (again, todo) = lock.withLock { () -> (Bool, [@Sendable () -> Void]) in
            defer { signalled = true }
            return (signalled, handlers)
        }
        if again { _exit(130) }
        FileHandle.standardError.write(Data("compeft: interrupted; cleaning up (Ctrl-C again to quit at once)\n".utf8))
        for h in todo { h() }
    }
}
