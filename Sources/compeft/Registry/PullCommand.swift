import AdapterFormat
import ArgumentParser
import Exchange
import Foundation

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Download an expert from an OCI registry as a .cpeft file, byte for byte.",
        discussion: """
            The container is downloaded into the blob cache (an interrupted download resumes where it \
            stopped), checked against its digest, and written to a temporary file renamed into place: a \
            corrupt blob, a failed signature check or Ctrl-C leaves no output file.

            Example:
              compeft pull localhost:5000/experts/sentiment:v1 -o sentiment.cpeft
              compeft pull ghcr.io/acme/sentiment@sha256:… -o s.cpeft --verify-key key.pub
            """)

    @Argument(help: "registry/repository[:tag][@sha256:…]")
    var reference: String

    @Option(name: .shortAndLong, help: "Output .cpeft file.")
    var output: String

    @Flag(help: "Overwrite the output if it exists.")
    var force = false

    @OptionGroup var remote: RemoteInputOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.setUp()
        let ref = try Reference(parsing: reference.hasPrefix("oci://") ? String(reference.dropFirst(6)) : reference)
        guard output != "-" else { throw CLIError(status: .usage, message: "pull writes a file; give a path to -o (compeft decompress REF -o - streams tensors)") }
        let key = try remote.verifyingKey()
        let registry = remote.connection.makeRegistry()
        let progress = Progress("pulling", quiet: common.quiet, unit: .bytes)
        let start = Date()
        let report = try registry.pull(ref, to: output, overwrite: force, verifyingKey: key, progress: { progress.update($0, $1) })
        progress.finish()
        let seconds = Date().timeIntervalSince(start)
        let r = report.resolved
        if common.json {
            var o: [String: Any] = [
                "reference": r.reference.description, "digest": r.manifestDigest.description, "output": output,
                "container": ["digest": r.layer.digest.description, "size": r.layer.size] as [String: Any],
                "downloaded_bytes": report.downloadedBytes, "resumed_from": report.resumedFrom, "from_cache": report.fromCache,
                "seconds": seconds,
            ]
            if let s = r.verifiedSigner { o["verified_signer"] = s }
            Terminal.out(Terminal.json(o))
            return
        }
        guard !common.quiet else { return }
        var lines = ["\(r.reference) → \(output)"]
        let how = report.fromCache ? "from the cache"
            : "downloaded \(TextFormat.bytes(report.downloadedBytes)) in \(String(format: "%.2f", seconds)) s"
            + (report.resumedFrom > 0 ? ", resumed at byte \(report.resumedFrom)" : "")
        lines.append("  \(TextFormat.bytes(r.layer.size)) container \(r.layer.digest), digest checked, \(how)")
        if let s = r.verifiedSigner { lines.append("  signature by \(s) verified") }
        Terminal.out(lines.joined(separator: "\n"))
    }
}
