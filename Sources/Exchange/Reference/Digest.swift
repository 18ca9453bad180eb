public import Crypto
public import Foundation
import TaskVector

/// A content digest as the OCI image spec writes it: `sha256:` and 64 lowercase hex digits.
///
/// Only SHA-256 is accepted: it is what every registry computes, and a digest this build cannot check is
/// refused rather than trusted.
public struct Digest: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 64 lowercase hex digits.
    public let hex: String

    /// Parses `sha256:<64 lowercase hex>`; nil for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        self.hex = String(hex)
    }

    /// The digest of a SHA-256 hash value.
    public init(_ hash: SHA256.Digest) {
        hex = hash.map { String(format: "%02x", $0) }.joined()
    }

    /// The digest of `bytes`.
    public static func of(_ bytes: some DataProtocol) -> Digest {
        Digest(SHA256.hash(data: bytes))
    }

    public var description: String { "sha256:" + hex }

    /// The tag the signature convention stores a manifest's signature under: `sha256-<hex>.sig`.
    public var signatureTag: String { "sha256-\(hex).sig" }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a sha256 digest"))
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// SHA-256 over bytes that arrive in pieces (a download, a file read in chunks).
public struct DigestHasher: Sendable {
    private var hasher = SHA256()
    /// Bytes hashed so far.
    public private(set) var count = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
        count += bytes.count
    }

    public func finalize() -> Digest { Digest(hasher.finalize()) }

    /// Hashes the first `count` bytes of `source`, read in pieces of at most 4 MiB.
    ///
    /// - Throws: what `source` throws for a failed read.
    mutating func update(reading source: any ByteSource, count: Int) throws {
        var buffer = [UInt8](repeating: 0, count: min(count, 4 << 20))
        var offset = 0
        while offset < count {
            let n = min(buffer.count, count - offset)
            try buffer.withUnsafeMutableBytes { b in
                let part = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                try source.read(into: part, at: offset)
                update(UnsafeRawBufferPointer(part))
            }
            offset += n
        }
    }
}
