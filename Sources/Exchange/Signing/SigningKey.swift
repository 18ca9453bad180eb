import Crypto
import CryptoExtras
public import Foundation

/// An Ed25519 private key, read from and written as PEM exactly as OpenSSL does
/// (`openssl genpkey -algorithm ed25519`: PKCS#8, `-----BEGIN PRIVATE KEY-----`).
public struct SigningKey: Sendable {
    let key: Curve25519.Signing.PrivateKey

    /// A new random key.
    public init() { key = Curve25519.Signing.PrivateKey() }

    /// Reads a PEM file.
    ///
    /// - Throws: ``ExchangeError`` (`.usage`) naming the file when it cannot be read or is not an Ed25519
    ///   PKCS#8 private key.
    public init(pemFile path: String) throws {
        let text = try readKeyFile(path)
        do {
            key = try Curve25519.Signing.PrivateKey(pemRepresentation: text)
        } catch {
            throw ExchangeError(.usage, path, "not an Ed25519 private key in PKCS#8 PEM (make one with `compeft keygen` or `openssl genpkey -algorithm ed25519`)")
        }
    }

    /// The PKCS#8 PEM text, as `openssl genpkey -algorithm ed25519` writes it.
    public var pem: String { key.pemRepresentation + "\n" }

    public var publicKey: VerifyingKey { VerifyingKey(key: key.publicKey) }

    /// The Ed25519 signature of `message` (64 bytes).
    public func sign(_ message: Data) throws -> Data {
        try key.signature(for: message)
    }
}

/// An Ed25519 public key, read from and written as PEM exactly as `openssl pkey -pubout` does
/// (SubjectPublicKeyInfo, `-----BEGIN PUBLIC KEY-----`).
public struct VerifyingKey: Sendable {
    let key: Curve25519.Signing.PublicKey

    init(key: Curve25519.Signing.PublicKey) { self.key = key }

    /// Reads a PEM file.
    ///
    /// - Throws: ``ExchangeError`` (`.usage`) naming the file when it cannot be read or is not an Ed25519
    ///   SubjectPublicKeyInfo public key.
    public init(pemFile path: String) throws {
        let text = try readKeyFile(path)
        do {
            key = try Curve25519.Signing.PublicKey(pemRepresentation: text)
        } catch {
            throw ExchangeError(.usage, path, "not an Ed25519 public key in SubjectPublicKeyInfo PEM (make one with `compeft keygen` or `openssl pkey -pubout`)")
        }
    }

    public var pem: String { key.pemRepresentation + "\n" }

    /// `sha256:` of the raw 32-byte key: how signatures name their signer.
    public var fingerprint: String { Digest.of(key.rawRepresentation).description }

    public func isValidSignature(_ signature: Data, for message: Data) -> Bool {
        key.isValidSignature(signature, for: message)
    }
}

private func readKeyFile(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ExchangeError(.io, path, "cannot read the key file")
    }
    guard data.count < 64 << 10, let text = String(data: data, encoding: .utf8) else {
        throw ExchangeError(.usage, path, "is not a PEM key file")
    }
    return text
}
