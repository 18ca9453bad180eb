import Foundation

/// A failed registry operation, as one line that names the reference.
///
/// The ``code`` says what kind of failure it was, so a command line can map it to an exit status and a
/// server can decide whether to retry.
public struct ExchangeError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A reference, key or option that cannot be used as given.
        case usage
        /// The registry answered that the repository, tag, manifest or blob does not exist.
        case notFound
        /// The registry refused the credentials, or asked for credentials that were not found.
        case unauthorized
        /// The connection failed, timed out or dropped, or the registry kept answering 5xx.
        case network
        /// The registry answered something the distribution spec does not allow.
        case protocolViolation
        /// Bytes that do not match their digest, or an artifact that is not a compeft expert.
        case integrity
        /// A missing, unsigned or wrongly signed expert under `--verify-key`.
        case signature
        /// A local file could not be read or written.
        case io
        /// The operation was cancelled (Ctrl-C).
        case interrupted
    }

    public var code: Code
    /// What it was about: a reference (`localhost:5000/experts/a:v1`), a file or a key.
    public var subject: String
    public var message: String
    /// The failure happened in the TLS handshake (a loopback registry speaking plain HTTP fails this way).
    public var tlsFailure = false

    public init(_ code: Code, _ subject: String, _ message: String) {
        self.code = code
        self.subject = subject
        self.message = message
    }

    public var description: String { subject.isEmpty ? message : "\(subject): \(message)" }
}

extension ExchangeError {
    /// The same error reported as being about `reference` (what the user typed), keeping the blob it
    /// concerned in the message.
    func about(_ reference: String) -> ExchangeError {
        guard subject != reference else { return self }
        var e = self
        if let at = subject.range(of: "@sha256:"), !message.contains(String(subject[at.upperBound...])) {
            e.message = "blob sha256:\(subject[at.upperBound...]): \(message)"
        }
        e.subject = reference
        return e
    }
}

/// Runs `body`, reporting any ``ExchangeError`` as being about `reference`.
func reporting<T>(_ reference: Reference, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExchangeError { throw e.about(reference.description) }
}
