#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import TaskVector

/// What `compeft` does when a signal ends it: remove its unfinished outputs first.
///
/// - SIGINT, SIGTERM, SIGHUP: every thread blocks them; one thread waits for them (`sigwait`), removes
///   the registered temporaries (``TemporaryFiles``: hidden files and folders not yet renamed into
///   place), then lets the signal end the process as it would have (exit status 128 + signal).
///   Destinations are untouched: a rename into place either finished before (the output is complete)
///   or never happens.
/// - SIGBUS, raised when a memory-mapped input shrinks under compeft (or its disk fails): the faulting
///   thread hands the address to the waiting thread, which reports an I/O error naming the file
///   (``MappedRegions``), removes the temporaries and exits with status 4. A `SIGBUS` that is not a
///   lost page (`si_code` other than `BUS_ADRERR`/`BUS_OBJERR`) goes to the handler that was there
///   before (the Swift runtime's backtracer, or the default).
/// - SIGKILL cannot be handled: output files are unnamed until they are complete (`O_TMPFILE`), so
///   they vanish with the process; a folder output's hidden temporary folder stays.
enum Signals {
    /// The signals that end compeft after removing its temporaries.
    static let terminating: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    /// Sent by the `SIGBUS` handler to the waiting thread.
    static let faultNotice = SIGUSR2

    /// Starts handling; call first thing in `main`, before any other thread exists, so that every
    /// thread inherits the blocked signals.
    static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in terminating + [faultNotice] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        let thread = Thread {
            var set = waited
            while true {
                var received: Int32 = 0
                guard sigwait(&set, &received) == 0 else { continue }
                handle(received)
            }
        }
        thread.name = "compeft-signals"
        thread.start()
        installBusHandler()
    }

    /// Runs on the waiting thread: clean up, then end the process as `signal` asks, still holding the
    /// registry of temporaries so that no other thread can create one in between.
    private static func handle(_ signal: Int32) -> Never {
        let address = faultAddress.load(ordering: .acquiring)
        if signal == faultNotice && address != 0 {
            let file = MappedRegions.file(containing: address)
            TemporaryFiles.removeAll { _ in
                if let file, file.isOutput {
                    writeError("compeft: error: \(file.path): the output changed while compeft was writing it (another process "
                        + "truncated it, or the disk failed); it was not written")
                } else {
                    let what = file.map { "\($0.path): " } ?? ""
                    writeError("compeft: error: \(what)the file changed while compeft was reading it (it is shorter than when it "
                        + "was opened, or reading it failed); the output was not written")
                }
                _exit(ExitStatus.ioError.rawValue)
            }
        }
        TemporaryFiles.removeAll { removed in
            if !removed.isEmpty {
                let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : signal == SIGHUP ? "SIGHUP" : "signal \(signal)"
                writeError("compeft: stopped by \(name); the unfinished output was removed")
            }
            // End the process as the signal would have: default action, unblocked, raised on this thread.
            Glibc.signal(signal, SIG_DFL)
            var only = sigset_t()
            sigemptyset(&only)
            sigaddset(&only, signal)
            pthread_sigmask(SIG_UNBLOCK, &only, nil)
            raise(signal)
            _exit(128 + signal)
        }
    }

    /// One line to stderr with `write(2)`: no lock another thread could be holding.
    private static func writeError(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { break }
            done += n
        }
    }

    // MARK: - SIGBUS

    /// The address of the first fault, for the waiting thread (0: none).
    fileprivate static let faultAddress = Atomic<UInt>(0)
    /// The handler that was installed before ours, restored for faults that are not ours to report.
    /// Written once in ``installBusHandler()``, read by the handler.
    nonisolated(unsafe) fileprivate static let previousBusAction = UnsafeMutablePointer<sigaction>.allocate(capacity: 1)

    private static func installBusHandler() {
        _ = faultAddress.load(ordering: .relaxed)  // initialize the globals now, not inside the handler
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = busHandler
        action.sa_flags = SA_SIGINFO
        sigemptyset(&action.sa_mask)
        sigaction(SIGBUS, &action, previousBusAction)
    }
}

/// Runs on the thread that touched a lost page. Only async-signal-safe calls: an atomic store,
/// `kill`, `sigaction`, `pause`.
private func busHandler(_ signal: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    guard let info, info.pointee.si_code == BUS_ADRERR || info.pointee.si_code == BUS_OBJERR,
        let address = info.pointee._sifields._sigfault.si_addr
    else {
        // Not a lost page of a mapped file: let the previous handler (or the default) have it.
        sigaction(SIGBUS, Signals.previousBusAction, nil)
        return
    }
    _ = Signals.faultAddress.compareExchange(
        expected: 0, desired: UInt(bitPattern: address), ordering: .releasing)
    kill(getpid(), Signals.faultNotice)
    // Returning would touch the page again; the waiting thread ends the process.
    while true { pause() }
}
