public import Foundation

/// What a signature signs: cosign's "simple signing" JSON, naming the manifest digest and the repository.
///
/// ```json
/// {"critical":{"identity":{"docker-reference":"localhost:5000/experts/sentiment"},
///              "image":{"docker-manifest-digest":"sha256:…"},"type":"cosign container image signature"},
///  "optional":{"creator":"compeft 0.1.0"}}
/// ```
/// The Ed25519 signature is over these bytes exactly as stored in the signature layer, so a verifier
/// needs no canonical JSON: it checks the signature, then reads the digest out of the signed bytes.
public struct SignaturePayload: Codable, Sendable, Equatable {
    public struct Critical: Codable, Sendable, Equatable {
        public struct Identity: Codable, Sendable, Equatable {
            public var dockerReference: String
            enum CodingKeys: String, CodingKey { case dockerReference = "docker-reference" }
        }
        public struct Image: Codable, Sendable, Equatable {
            public var dockerManifestDigest: String
            enum CodingKeys: String, CodingKey { case dockerManifestDigest = "docker-manifest-digest" }
        }
        public var identity: Identity
        public var image: Image
        public var type: String
    }
    public var critical: Critical
    public var optional: [String: String]?

    static let type = "cosign container image signature"

    public init(repository: String, manifest: Digest) {
        critical = Critical(identity: .init(dockerReference: repository), image: .init(dockerManifestDigest: manifest.description),
                            type: Self.type)
        optional = ["creator": "compeft \(ExchangeVersion.string)"]
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)
    }
}
