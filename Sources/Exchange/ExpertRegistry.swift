public import AdapterFormat
import Foundation
public import TaskVector

/// compeft's side of an OCI registry: push a container as an artifact, pull it back byte for byte,
/// open it remotely for serving (fetching one tensor at a time), list tags, sign and verify.
///
/// The artifact is an OCI image manifest with `artifactType` ``MediaType/adapterArtifact``, a config
/// blob (``ExpertConfig``) and one layer, the `.cpeft` file (docs/FORMAT.md, "compeft on OCI
/// registries"). A signature is a separate artifact under the tag `sha256-<manifest hex>.sig`.
///
/// One instance may serve many threads; ``cancelAll()`` (for Ctrl-C) stops every request in flight.
public final class ExpertRegistry: @unchecked Sendable {
    public let options: RegistryClient.Options
    /// Where whole, verified blobs are kept (nil: nothing is cached).
    public let cache: BlobCache?
    public let transport: HTTPTransport
    private let lock = NSLock()
    private var clients: [String: RegistryClient] = [:]

    public init(options: RegistryClient.Options = .init(), cache: BlobCache? = .default()) {
        self.options = options
        self.cache = cache
        transport = HTTPTransport(timeout: options.timeout, userAgent: "compeft/\(ExchangeVersion.string)")
    }

    /// The client for a registry (one per `host[:port]`, so tokens and the HTTP/HTTPS choice are kept).
    public func client(for registry: String) -> RegistryClient {
        lock.withLock {
            if let c = clients[registry] { return c }
            let c = RegistryClient(registry: registry, options: options, transport: transport)
            clients[registry] = c
            return c
        }
    }

    /// Stops every request in flight; they and all later ones fail with `.interrupted`.
    public func cancelAll() { transport.cancelAll() }

    // MARK: - Resolving

    /// A manifest that was checked to be a compeft expert, with its config.
    public struct ResolvedExpert: Sendable {
        /// The reference pinned to the manifest's digest.
        public var reference: Reference
        public var manifestDigest: Digest
        public var manifest: ImageManifest
        public var config: ExpertConfig
        /// The container layer.
        public var layer: Descriptor
        /// The fingerprint of the key whose signature was verified, when one was asked for.
        public var verifiedSigner: String?
    }

    /// Fetches and checks the manifest and config of `ref`; with `verifyingKey`, refuses it unless a
    /// signature by that key for this manifest digest is stored under `sha256-<hex>.sig`.
    ///
    /// - Throws: ``ExchangeError``: `.notFound`, `.integrity` (not a compeft artifact, a digest mismatch),
    ///   `.signature`, or a transport error.
    public func resolve(_ ref: Reference, verifyingKey: VerifyingKey? = nil) throws -> ResolvedExpert {
        try reporting(ref) { try resolveUnreported(ref, verifyingKey: verifyingKey) }
    }

    private func resolveUnreported(_ ref: Reference, verifyingKey: VerifyingKey?) throws -> ResolvedExpert {
        let client = client(for: ref.registry)
        let subject = ref.description
        let fetched = try client.manifest(ref)
        if fetched.mediaType == MediaType.imageIndex {
            throw ExchangeError(.integrity, subject, "is an image index (a multi-platform image), not a compeft expert")
        }
        let manifest = try ImageManifest.decode(fetched.bytes, subject: subject)
        guard manifest.artifactType == MediaType.adapterArtifact || manifest.config.mediaType == MediaType.config else {
            let kind = manifest.artifactType ?? manifest.config.mediaType
            throw ExchangeError(.integrity, subject, "is not a compeft expert (its type is \(kind))")
        }
        guard manifest.config.mediaType == MediaType.config, manifest.config.size <= 16 << 20 else {
            throw ExchangeError(.integrity, subject, "the manifest's config is \(manifest.config.mediaType), not \(MediaType.config)")
        }
        let containers = manifest.layers.filter { $0.mediaType == MediaType.container }
        guard containers.count == 1, let layer = containers.first, layer.size >= 0 else {
            throw ExchangeError(.integrity, subject, "a compeft expert has exactly one \(MediaType.container) layer; this one has \(containers.count)")
        }
        let configBytes = try client.blob(repository: ref.repository, digest: manifest.config.digest, maxSize: manifest.config.size)
        let config = try ExpertConfig.decode(configBytes, subject: subject)
        var signer: String?
        if let verifyingKey {
            try verifySignature(of: fetched.digest, in: ref, key: verifyingKey)
            signer = verifyingKey.fingerprint
        }
        return ResolvedExpert(reference: ref.with(digest: fetched.digest), manifestDigest: fetched.digest, manifest: manifest,
                              config: config, layer: layer, verifiedSigner: signer)
    }

    // MARK: - Serving

    /// Opens a remote expert for reading: from the cache when it holds the container, otherwise over
    /// HTTP `Range` requests (the trailer and index now, each tensor's payload when it is decoded).
    ///
    /// - Returns: the reader, and the resolved expert (manifest digest, config).
    public func open(_ ref: Reference, verifyingKey: VerifyingKey? = nil) throws -> (ContainerReader, ResolvedExpert) {
        let resolved = try resolve(ref, verifyingKey: verifyingKey)
        return (try open(resolved, name: ref.description), resolved)
    }

    /// Opens the container of an already resolved expert.
    public func open(_ resolved: ResolvedExpert, name: String) throws -> ContainerReader {
        let source = try byteSource(resolved, name: name)
        return try ContainerReader(source: source)
    }

    /// The container's bytes: the cached blob when there is one, else a ``RemoteBlobSource``.
    public func byteSource(_ resolved: ResolvedExpert, name: String) throws -> any ByteSource {
        if let cached = cache?.source(resolved.layer.digest, size: resolved.layer.size, name: name) { return cached }
        return RemoteBlobSource(client: client(for: resolved.reference.registry), repository: resolved.reference.repository,
                                digest: resolved.layer.digest, size: resolved.layer.size, name: name)
    }

    // MARK: - Tags

    /// The tags of `ref`'s repository (tag and digest of `ref` are ignored), signature tags included.
    public func tags(_ ref: Reference) throws -> [String] {
        try reporting(ref) { try client(for: ref.registry).tags(repository: ref.repository) }
    }
}
