public import AdapterFormat
public import Foundation
public import TaskVector

extension ExpertRegistry {
    /// What a push did.
    public struct PushReport: Sendable {
        /// The reference pushed, pinned to the manifest digest.
        public var reference: Reference
        public var manifestDigest: Digest
        public var layer: Descriptor
        public var config: Descriptor
        /// Blob bytes sent (0 when the registry already had both blobs).
        public var uploadedBytes: Int
        /// Whether the registry already had the container blob.
        public var layerExisted: Bool
        /// The signature artifact's manifest digest, when the push was signed.
        public var signature: Digest?
    }

    /// Pushes the container at `path` to `ref` (a tag; `latest` when none is given).
    ///
    /// The order makes a tag never point at a half-published expert: the container blob, then the config
    /// blob (each skipped when the registry has it), then the manifest under the tag, then the
    /// signature. A push that fails leaves the tag as it was.
    ///
    /// - Parameters:
    ///   - description: the manifest's `org.opencontainers.image.description` (a summary by default).
    ///   - created: the manifest's `org.opencontainers.image.created`.
    ///   - progress: container bytes acknowledged by the registry, and the container's size.
    /// - Throws: ``ExchangeError``, or ``FormatError`` when `path` is not a valid container.
    public func push(containerAt path: String, to ref: Reference, description: String? = nil, signingKey: SigningKey? = nil,
                     created: Date = Date(), progress: (Int, Int) -> Void = { _, _ in }) throws -> PushReport {
        guard ref.digest == nil else {
            throw ExchangeError(.usage, ref.description, "push to a tag, not a digest (the digest is computed from what is pushed)")
        }
        let subject = ref.description
        let source = try FileByteSource(path: path)
        let reader = try ContainerReader(source: source)
        let config = try ExpertConfig(reader: reader)
        let configBytes = config.encoded()
        let size = source.size

        // The container's digest, read once; the upload reads the same open file again.
        var hasher = DigestHasher()
        try hasher.update(reading: source, count: size)
        let layerDigest = hasher.finalize()
        let title = URL(fileURLWithPath: path).lastPathComponent
        let layer = Descriptor(mediaType: MediaType.container, digest: layerDigest, size: size,
                               annotations: [Annotation.title: title])
        let configDescriptor = Descriptor(mediaType: MediaType.config, digest: Digest.of(configBytes), size: configBytes.count)

        let client = client(for: ref.registry)
        let uploaded = try client.uploadBlob(repository: ref.repository, digest: layerDigest, size: size,
                                             read: { offset, count in
                                                 var d = Data(count: count)
                                                 try d.withUnsafeMutableBytes { try source.read(into: $0, at: offset) }
                                                 return d
                                             }, progress: { progress($0, size) })
        let configUpload = try client.uploadBlob(repository: ref.repository, digest: configDescriptor.digest, size: configBytes.count,
                                                 read: { o, n in configBytes.subdata(in: o..<(o + n)) })

        let manifest = ImageManifest(
            artifactType: MediaType.adapterArtifact, config: configDescriptor, layers: [layer],
            annotations: [
                Annotation.created: Self.rfc3339(created),
                Annotation.description: description ?? Self.summary(config),
                Annotation.version: config.compeftVersion,
            ])
        var manifestBytes = manifest.encoded()
        let digest: Digest
        if description == nil, let current = try? client.manifest(ref), let m = try? ImageManifest.decode(current.bytes, subject: subject),
           m.artifactType == manifest.artifactType, m.config == manifest.config, m.layers == manifest.layers {
            // The tag already holds this expert: keep its manifest (and any signature of it) as it is.
            digest = current.digest
            manifestBytes = current.bytes
        } else {
            digest = try client.putManifest(manifestBytes, mediaType: MediaType.imageManifest, to: ref)
        }
        var report = PushReport(reference: ref.with(digest: digest), manifestDigest: digest, layer: layer, config: configDescriptor,
                                uploadedBytes: uploaded.bytesSent + configUpload.bytesSent, layerExisted: uploaded.existed, signature: nil)
        if let signingKey {
            report.signature = try sign(Descriptor(mediaType: MediaType.imageManifest, digest: digest, size: manifestBytes.count),
                                        in: ref, key: signingKey)
        }
        return report
    }

    /// "compeft LORA adapter, 10 tensors, density 10%".
    static func summary(_ c: ExpertConfig) -> String {
        let kind = c.inputKind == "peft-adapter" ? "\(c.peftType ?? "PEFT") adapter" : c.inputKind
        let density = c.compression.density.rounded() == c.compression.density ? String(Int(c.compression.density)) : String(c.compression.density)
        return "compeft \(kind), \(c.counts.tensors) tensors, \(c.compression.method) density \(density)%"
            + (c.baseModel.map { ", base \($0)" } ?? "")
    }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }
}
