import AdapterFormat
import ArgumentParser
import Exchange
import Foundation

struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Publish a .cpeft container to an OCI registry under a tag.",
        discussion: """
            The container becomes an OCI artifact (docs/FORMAT.md, "compeft on OCI registries"): a manifest \
            with artifactType application/vnd.compeft.adapter.v1, a config blob describing the expert, and the \
            container as its one layer. Blobs the registry already has are not sent again; the manifest goes \
            up last, so the tag never points at a half-published expert. Prints the pinned reference \
            (REF@sha256:…) first.

            Credentials: COMPEFT_REGISTRY_USERNAME and COMPEFT_REGISTRY_PASSWORD, else Docker's config.json \
            (`docker login`), $REGISTRY_AUTH_FILE or $DOCKER_CONFIG.

            Example:
              compeft push expert.cpeft localhost:5000/experts/sentiment:v1
              compeft push expert.cpeft ghcr.io/acme/sentiment:v1 --sign-key key.pem
            """)

    @Argument(help: "The container to publish.")
    var input: String

    @Argument(help: "Where: registry/repository[:tag] (tag 'latest' when none is given).")
    var reference: String

    @Option(help: ArgumentHelp("Sign the manifest digest with this Ed25519 private key (PEM) and store the signature under the tag sha256-<digest>.sig.",
                               valueName: "key.pem"))
    var signKey: String?

    @Option(help: "The manifest's org.opencontainers.image.description (default: a summary of the expert).")
    var description: String?

    @Option(help: ArgumentHelp("Containers larger than this go up in chunks of this many bytes (default 16 MiB).", valueName: "bytes"))
    var chunkSize: Int = 16 << 20

    @OptionGroup(title: "Registry") var registryOptions: RegistryOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard chunkSize >= 1 << 10 else { throw ValidationError("--chunk-size must be at least 1024 bytes") }
    }

    func run() throws {
        common.setUp()
        let ref = try Reference(parsing: reference)
        let key = try signKey.map { try SigningKey(pemFile: $0) }
        let registry = registryOptions.makeRegistry(chunkSize: chunkSize)
        let progress = Progress("pushing", quiet: common.quiet, unit: .bytes)
        let start = Date()
        let created = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(Double.init).map(Date.init(timeIntervalSince1970:)) ?? Date()
        let report = try registry.push(containerAt: input, to: ref.tag == nil ? ref.with(tag: "latest") : ref, description: description,
                                       signingKey: key, created: created, progress: { progress.update($0, $1) })
        progress.finish()
        let seconds = Date().timeIntervalSince(start)
        if common.json {
            var o: [String: Any] = [
                "input": input, "reference": report.reference.description, "digest": report.manifestDigest.description,
                "container": ["digest": report.layer.digest.description, "size": report.layer.size] as [String: Any],
                "config": ["digest": report.config.digest.description, "size": report.config.size] as [String: Any],
                "uploaded_bytes": report.uploadedBytes, "container_existed": report.layerExisted, "seconds": seconds,
            ]
            if let s = report.signature { o["signature"] = ["digest": s.description, "tag": report.manifestDigest.signatureTag, "signer": key!.publicKey.fingerprint] }
            Terminal.out(Terminal.json(o))
            return
        }
        guard !common.quiet else { return }
        var lines = [report.reference.description]
        let container = "\(TextFormat.bytes(report.layer.size)) container \(report.layer.digest)"
        if report.uploadedBytes == 0 {
            lines.append("  \(container): the registry had every blob, nothing uploaded")
        } else {
            lines.append("  \(container): uploaded \(TextFormat.bytes(report.uploadedBytes)) in \(String(format: "%.2f", seconds)) s"
                         + (report.layerExisted ? " (the container was already there)" : ""))
        }
        if let s = report.signature {
            lines.append("  signed by \(key!.publicKey.fingerprint) → \(report.manifestDigest.signatureTag) (\(s))")
        }
        Terminal.out(lines.joined(separator: "\n"))
    }
}
