/// The media types of compeft on OCI registries (docs/FORMAT.md, "compeft on OCI registries").
public enum MediaType {
    /// An OCI image manifest: what every compeft artifact is.
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    /// An OCI image index (a multi-platform image): not a compeft expert.
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    /// The manifest's `artifactType`: this artifact is a compressed expert.
    public static let adapterArtifact = "application/vnd.compeft.adapter.v1"
    /// The config blob: what a client needs to know before it downloads the container.
    public static let config = "application/vnd.compeft.config.v1+json"
    /// The one layer: the `.cpeft` container, byte for byte.
    public static let container = "application/vnd.compeft.container.v1"
    /// The OCI empty descriptor's type, for a config that carries nothing.
    public static let empty = "application/vnd.oci.empty.v1+json"
    /// A signature artifact's `artifactType` and its config.
    public static let signatureArtifact = "application/vnd.compeft.signature.v1"
    /// A signature layer: the signed payload (cosign's simple-signing JSON); the signature is in its annotation.
    public static let simpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
}

/// Annotation keys.
public enum Annotation {
    public static let created = "org.opencontainers.image.created"
    public static let description = "org.opencontainers.image.description"
    public static let title = "org.opencontainers.image.title"
    public static let version = "org.opencontainers.image.version"
    /// The base64 Ed25519 signature of a signature layer's payload (cosign's key).
    public static let signature = "dev.cosignproject.cosign/signature"
    /// The SHA-256 fingerprint of the public key that verifies a signature layer (hex of the raw key's hash).
    public static let signer = "dev.compeft.signer"
}
