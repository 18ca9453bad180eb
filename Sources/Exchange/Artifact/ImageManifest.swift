public import Foundation

/// A content descriptor (OCI image spec, `descriptor.md`).
public struct Descriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int
    public var annotations: [String: String]?
    /// Inline content, for the empty descriptor (`e30=`, `{}`).
    public var data: String?

    public init(mediaType: String, digest: Digest, size: Int, annotations: [String: String]? = nil, data: String? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.data = data
    }
}

/// An OCI image manifest (`manifest.md`), with the 1.1 `artifactType` field.
public struct ImageManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var artifactType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    /// The manifest this one is about (a signature's subject), for registries with the referrers API.
    public var subject: Descriptor?
    public var annotations: [String: String]?

    public init(artifactType: String, config: Descriptor, layers: [Descriptor], subject: Descriptor? = nil,
                annotations: [String: String]?) {
        schemaVersion = 2
        mediaType = MediaType.imageManifest
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.subject = subject
        self.annotations = annotations
    }

    /// The manifest's canonical bytes: JSON with sorted keys, no insignificant whitespace.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)
    }

    /// Parses manifest bytes; `subject` names the reference in errors.
    public static func decode(_ bytes: Data, subject: String) throws -> ImageManifest {
        do {
            let m = try JSONDecoder().decode(ImageManifest.self, from: bytes)
            guard m.schemaVersion == 2 else {
                throw ExchangeError(.integrity, subject, "manifest schemaVersion \(m.schemaVersion) is not 2")
            }
            return m
        } catch let e as ExchangeError {
            throw e
        } catch {
            throw ExchangeError(.integrity, subject, "not an OCI image manifest: \(error)")
        }
    }
}
