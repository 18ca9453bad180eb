#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif
import Foundation
import Synchronization

/// The temporary files and folders that writers have made and not yet renamed into place, so that a
/// process ending on a signal can remove them (``removeAll()``) and leave nothing behind.
///
/// ``AtomicFileWriter`` registers its temporary file only where the file system cannot create it
/// without a name (`O_TMPFILE`); ``AtomicDirectoryWriter`` always registers its temporary folder.
/// Renames into place run while removal is held off (``withRemovalHeld(_:)``), so a signal either
/// finds the temporary, or the finished output at its destination, never half of a replacement.
package enum TemporaryFiles {
    /// A registered path.
    package struct Token: Hashable, Sendable {
        fileprivate let id: Int
    }

    /// The registry, handed to ``withRemovalHeld(_:)``'s body.
    package struct Registry: ~Copyable {
        fileprivate var paths: [Int: (path: String, isFolder: Bool)] = [:]
        fileprivate var next = 0
        /// ``removeAll()`` has run: the process is ending.
        fileprivate var ending = false

        /// Records `path`. When the process is already ending it is removed at once instead.
        package mutating func add(_ path: String, isFolder: Bool) -> Token {
            next += 1
            if ending {
                TemporaryFiles.remove(path, isFolder: isFolder)
            } else {
                paths[next] = (path, isFolder)
            }
            return Token(id: next)
        }

        /// Forgets `token`'s path (it was renamed into place or removed).
        package mutating func remove(_ token: Token?) {
            if let token { paths[token.id] = nil }
        }
    }

    private static let registry = Mutex(Registry())

    /// Records `path`, a temporary file or folder that is not yet the output.
    package static func register(_ path: String, isFolder: Bool) -> Token {
        registry.withLock { $0.add(path, isFolder: isFolder) }
    }

    /// Forgets `token`'s path.
    package static func unregister(_ token: Token?) {
        registry.withLock { $0.remove(token) }
    }

    /// Runs `body` (a rename into place, and the registry changes that go with it) while
    /// ``removeAll()`` cannot run.
    package static func withRemovalHeld<R, E: Error>(_ body: (inout Registry) throws(E) -> R) throws(E) -> R {
        try registry.withLock { (registry: inout Registry) throws(E) -> R in try body(&registry) }
    }

    /// Removes every registered path, now and as later ones are registered; returns what it removed.
    ///
    /// It does not stop other threads, whose writes into removed temporaries then fail or vanish.
    @discardableResult
    package static func removeAll() -> [String] {
        registry.withLock { registry in removeAll(in: &registry) }
    }

    /// Removes every registered path, then runs `end` (which ends the process) before anything else
    /// can be registered: a thread that was about to create and register a temporary can neither
    /// create it after the removal nor be cut off between creating and registering it.
    package static func removeAll(thenEnd end: ([String]) -> Never) -> Never {
        registry.withLock { registry in end(removeAll(in: &registry)) }
    }

    private static func removeAll(in registry: inout Registry) -> [String] {
        registry.ending = true
        let removed = registry.paths.values.sorted { $0.path < $1.path }
        for entry in removed { remove(entry.path, isFolder: entry.isFolder) }
        registry.paths = [:]
        return removed.map(\.path)
    }

    /// Removes a file, or a folder and everything in it (a writer may still be adding files: retried).
    fileprivate static func remove(_ path: String, isFolder: Bool) {
        guard isFolder else {
            unlink(path)
            return
        }
        for _ in 0..<8 {
            try? FileManager.default.removeItem(atPath: path)
            if access(path, F_OK) != 0 { return }
        }
    }
}

/// The memory mappings of files that are open, so that a `SIGBUS` (a mapped file that shrank, or a
/// disk that failed under it) can be reported naming the file.
package enum MappedRegions {
    private static let regions = Mutex([Int: (range: Range<UInt>, path: String, isOutput: Bool)]())
    private static let next = Atomic<Int>(0)

    /// Records that `bytes` map `path` (an output being written when `isOutput`); returns the key for
    /// ``unregister(_:)``.
    package static func register(_ bytes: UnsafeRawBufferPointer, path: String, isOutput: Bool = false) -> Int {
        let key = next.add(1, ordering: .relaxed).newValue
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return key }
        let start = UInt(bitPattern: base)
        regions.withLock { $0[key] = (start..<(start + UInt(bytes.count)), path, isOutput) }
        return key
    }

    package static func unregister(_ key: Int) {
        _ = regions.withLock { $0.removeValue(forKey: key) }
    }

    /// The file mapped at `address`, if any, and whether it is an output.
    package static func file(containing address: UInt) -> (path: String, isOutput: Bool)? {
        regions.withLock { regions in
            regions.values.first { $0.range.contains(address) }.map { ($0.path, $0.isOutput) }
        }
    }
}
