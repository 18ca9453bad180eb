import ArgumentParser
import Exchange
import Foundation
import Logging

/// How to reach a registry: transport, retries and the local blob cache.
struct RegistryOptions: ParsableArguments {
    @Flag(help: "Use plain HTTP for the registry. Without it only a loopback registry (localhost, 127.0.0.1, ::1) falls back to HTTP when its TLS handshake fails.")
    var plainHTTP = false

    @Option(help: "Seconds without progress before a request fails.")
    var timeout: Double = 60

    @Option(help: "Times a failed request (connection error, timeout, 429, 5xx) is tried again, with exponential backoff.")
    var retries: Int = 4

    @Option(help: ArgumentHelp("Blob cache folder (default: $COMPEFT_CACHE, $XDG_CACHE_HOME/compeft or ~/.cache/compeft).", valueName: "dir"))
    var cache: String?

    @Flag(help: "Keep no blobs in the cache (a download then cannot be resumed by a later command).")
    var noCache = false

    func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard retries >= 0, retries <= 20 else { throw ValidationError("--retries must be between 0 and 20") }
        if noCache && cache != nil { throw ValidationError("--cache and --no-cache cannot be used together") }
    }

    func clientOptions(chunkSize: Int? = nil) -> RegistryClient.Options {
        var o = RegistryClient.Options()
        o.plainHTTP = plainHTTP
        o.timeout = timeout
        o.attempts = retries + 1
        if let chunkSize { o.chunkSize = chunkSize }
        o.log = { line in Log.logger.debug("\(line)") }
        return o
    }

    /// The registry client. Ctrl-C (SIGINT), SIGTERM and SIGHUP end the command as for every other
    /// command (``Signals``): unfinished outputs are removed, a partial download stays in the cache.
    func makeRegistry(chunkSize: Int? = nil) -> ExpertRegistry {
        ExpertRegistry(options: clientOptions(chunkSize: chunkSize),
                       cache: noCache ? nil : cache.map(BlobCache.init(root:)) ?? .default())
    }
}

/// Options of commands that read an expert that may be on a registry.
struct RemoteInputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("For a registry reference: refuse the expert unless its manifest is signed by this Ed25519 public key (PEM).",
                               valueName: "key.pub"))
    var verifyKey: String?

    @OptionGroup(title: "Registry") var connection: RegistryOptions

    func verifyingKey() throws -> VerifyingKey? { try verifyKey.map { try VerifyingKey(pemFile: $0) } }
}
