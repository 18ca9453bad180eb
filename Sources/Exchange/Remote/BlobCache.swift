public import Foundation
public import TaskVector

/// Whole blobs on local disk, each stored under its digest after its bytes were checked against it:
/// `ROOT/blobs/sha256/<hex>`. A download in progress is `<hex>.partial` beside it and is resumed by the
/// next download of the same digest.
///
/// The default root is `$COMPEFT_CACHE`, else `$XDG_CACHE_HOME/compeft`, else `~/.cache/compeft`.
/// Several processes may share a cache: blobs are renamed into place whole, so a reader sees a complete,
/// verified blob or none.
public struct BlobCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The cache the environment names (see the type's description).
    public static func `default`(environment: [String: String] = ProcessInfo.processInfo.environment) -> BlobCache {
        if let c = environment["COMPEFT_CACHE"], !c.isEmpty { return BlobCache(root: c) }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { return BlobCache(root: x + "/compeft") }
        return BlobCache(root: (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/compeft")
    }

    var folder: String { root + "/blobs/sha256" }

    /// Where the verified blob lives (whether or not it is there).
    public func path(of digest: Digest) -> String { folder + "/" + digest.hex }

    func partialPath(of digest: Digest) -> String { path(of: digest) + ".partial" }

    /// The verified blob's path when the cache holds it with `size` bytes.
    public func lookup(_ digest: Digest, size: Int) -> String? {
        let p = path(of: digest)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: p),
              (attributes[.size] as? NSNumber)?.intValue == size else { return nil }
        return p
    }

    /// Creates the cache folder.
    func prepare() throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ExchangeError(.io, folder, "cannot create the blob cache folder: \(error.localizedDescription)")
        }
    }

    /// Opens a cached blob for reading; nil when it is not cached.
    public func source(_ digest: Digest, size: Int, name: String) -> (any ByteSource)? {
        guard let p = lookup(digest, size: size), let f = try? FileByteSource(path: p), f.size == size else { return nil }
        return NamedByteSource(base: f, name: name)
    }
}

/// A source read under another name (a cached blob reported as its registry reference).
struct NamedByteSource: ByteSource {
    let base: any ByteSource
    let name: String
    var size: Int { base.size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        do {
            try base.read(into: buffer, at: offset)
        } catch let e as TaskVectorError {
            throw TaskVectorError(.io, file: name, e.message)
        }
    }
}
