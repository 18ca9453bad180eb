public import Foundation

extension ExpertRegistry {
    /// The empty JSON object `{}`: the config of a signature artifact (the OCI empty descriptor).
    static let emptyConfig = Data("{}".utf8)

    /// Signs a manifest and stores the signature under the tag `sha256-<hex>.sig` of the same repository
    /// (the cosign tag convention, which works on registries without the referrers API).
    ///
    /// The signature artifact is an OCI manifest with `artifactType` ``MediaType/signatureArtifact``, the
    /// empty config, and one layer per signer: the signed payload (``SignaturePayload``) with the
    /// base64 Ed25519 signature in its `dev.cosignproject.cosign/signature` annotation and the key's
    /// fingerprint in `dev.compeft.signer`. A signer's earlier layer is replaced; other signers' are kept.
    ///
    /// - Returns: the signature artifact's manifest digest.
    @discardableResult
    public func sign(_ manifest: Descriptor, in ref: Reference, key: SigningKey) throws -> Digest {
        let client = client(for: ref.registry)
        let payload = SignaturePayload(repository: ref.repositoryName, manifest: manifest.digest).encoded()
        let signature = try key.sign(payload)
        let fingerprint = key.publicKey.fingerprint
        let layer = Descriptor(mediaType: MediaType.simpleSigning, digest: Digest.of(payload), size: payload.count,
                               annotations: [Annotation.signature: signature.base64EncodedString(), Annotation.signer: fingerprint])
        _ = try client.uploadBlob(repository: ref.repository, digest: layer.digest, size: payload.count,
                                  read: { o, n in payload.subdata(in: o..<(o + n)) })
        let config = Descriptor(mediaType: MediaType.empty, digest: Digest.of(Self.emptyConfig), size: 2, data: "e30=")
        _ = try client.uploadBlob(repository: ref.repository, digest: config.digest, size: 2, read: { o, n in Self.emptyConfig.subdata(in: o..<(o + n)) })
        let tagRef = ref.with(tag: manifest.digest.signatureTag)
        var layers: [Descriptor] = []
        if let existing = try? client.manifest(tagRef), let m = try? ImageManifest.decode(existing.bytes, subject: tagRef.description) {
            layers = m.layers.filter { $0.annotations?[Annotation.signer] != fingerprint }
        }
        layers.append(layer)
        let sigManifest = ImageManifest(artifactType: MediaType.signatureArtifact, config: config, layers: layers, subject: manifest,
                                        annotations: nil)
        return try client.putManifest(sigManifest.encoded(), mediaType: MediaType.imageManifest, to: tagRef)
    }

    /// Checks that `key` signed manifest `digest`: some layer of the artifact under `sha256-<hex>.sig`
    /// carries a valid Ed25519 signature by `key` over a payload that names exactly this digest.
    ///
    /// - Throws: ``ExchangeError`` (`.signature`) when the expert is unsigned, signed only by other keys,
    ///   or signed for another manifest.
    public func verifySignature(of digest: Digest, in ref: Reference, key: VerifyingKey) throws {
        let client = client(for: ref.registry)
        let subject = ref.description
        let tagRef = ref.with(tag: digest.signatureTag)
        let fetched: RegistryClient.FetchedManifest
        do {
            fetched = try client.manifest(tagRef)
        } catch let e as ExchangeError where e.code == .notFound {
            throw ExchangeError(.signature, subject, "is not signed: there is no \(digest.signatureTag) in \(ref.repositoryName)")
        }
        let manifest = try ImageManifest.decode(fetched.bytes, subject: tagRef.description)
        var others = 0
        for layer in manifest.layers.prefix(64) where layer.mediaType == MediaType.simpleSigning {
            guard let text = layer.annotations?[Annotation.signature], let signature = Data(base64Encoded: text), layer.size <= 64 << 10 else {
                others += 1
                continue
            }
            let payload = try client.blob(repository: ref.repository, digest: layer.digest, maxSize: layer.size)
            guard key.isValidSignature(signature, for: payload) else {
                others += 1
                continue
            }
            guard let p = try? JSONDecoder().decode(SignaturePayload.self, from: payload), p.critical.type == SignaturePayload.type else {
                throw ExchangeError(.signature, subject, "the signature by \(key.fingerprint) is over a payload compeft does not understand")
            }
            guard p.critical.image.dockerManifestDigest == digest.description else {
                throw ExchangeError(.signature, subject,
                                    "the signature by \(key.fingerprint) under \(digest.signatureTag) is for \(p.critical.image.dockerManifestDigest), not \(digest)")
            }
            return
        }
        throw ExchangeError(.signature, subject,
                            "no valid signature by key \(key.fingerprint) (\(others) signature(s) by other keys or not valid)")
    }
}
