import AdapterFormat
import Exchange
import Foundation
import Logging
import TaskVector

/// Opens a container from a path or from a registry reference, for every command that reads one.
enum ContainerInput {
    /// Whether `input` names a registry expert rather than a file: `oci://REF`, or a reference with an
    /// explicit registry (`localhost:5000/experts/a:v1`, `ghcr.io/acme/a@sha256:…`) when no file or folder
    /// of that name exists.
    static func reference(_ input: String) -> Reference? {
        if input.hasPrefix("oci://") { return try? Reference(parsing: String(input.dropFirst(6))) }
        guard input != "-", input.contains("/"), !input.hasPrefix("/"), !input.hasPrefix("."),
              !FileManager.default.fileExists(atPath: input),
              let ref = try? Reference(parsing: input), ref.registry != "docker.io" else { return nil }
        return ref
    }

    /// Opens `input`. A reference is resolved (manifest, config, and the signature with `--verify-key`);
    /// with `whole`, its container is downloaded into the cache and checked against its digest first
    /// (what `decompress` reads in full), otherwise it is read lazily by HTTP range requests (only the
    /// trailer and index for `inspect`).
    static func open(_ input: String, remote: RemoteInputOptions, whole: Bool) throws -> ContainerReader {
        if input.hasPrefix("oci://") { _ = try Reference(parsing: String(input.dropFirst(6))) }
        guard let ref = reference(input) else {
            if remote.verifyKey != nil {
                throw CLIError(status: .usage, message: "\(input): --verify-key applies to registry references, not files")
            }
            return try ContainerReader(path: input)
        }
        let registry = remote.connection.makeRegistry()
        let resolved = try registry.resolve(ref, verifyingKey: try remote.verifyingKey())
        Log.logger.debug("\(ref): manifest \(resolved.manifestDigest), container \(resolved.layer.digest) (\(resolved.layer.size) bytes)")
        if whole {
            let progress = Progress("downloading", quiet: false, unit: .bytes)
            let fetched = try registry.fetch(resolved, progress: { progress.update($0, $1) })
            progress.finish()
            defer { fetched.cleanup() }  // an open file outlives its unlinked temporary folder
            return try ContainerReader(source: RenamedSource(base: try FileByteSource(path: fetched.path), name: input))
        }
        let reader = try registry.open(resolved, name: input)
        if let remoteSource = reader.source as? RemoteBlobSource {
            let (bytes, requests) = remoteSource.fetchedBytes
            Log.logger.debug("\(ref): read \(bytes) of the container's \(resolved.layer.size) bytes in \(requests) range request(s)")
        }
        return reader
    }
}

/// A source reported under the name the user gave.
private struct RenamedSource: ByteSource {
    let base: any ByteSource
    let name: String
    var size: Int { base.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        do { try base.read(into: buffer, at: offset) } catch let e as TaskVectorError { throw TaskVectorError(.io, file: name, e.message) }
    }
}
