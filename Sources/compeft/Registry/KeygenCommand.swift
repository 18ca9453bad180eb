import ArgumentParser
import Exchange
import Foundation
import TaskVector

struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an Ed25519 key pair for signing experts.",
        discussion: """
            Writes the private key as PKCS#8 PEM (what `openssl genpkey -algorithm ed25519` writes), readable \
            by its owner only, and the public key as SubjectPublicKeyInfo PEM (what `openssl pkey -pubout` \
            writes) to --public (default: the private key's path with .pub instead of its extension).

            Example:
              compeft keygen -o key.pem
              compeft push expert.cpeft REF --sign-key key.pem
              compeft pull REF --verify-key key.pub -o expert.cpeft
            """)

    @Option(name: .shortAndLong, help: "Private key file to write.")
    var output: String

    @Option(name: .long, help: "Public key file to write.")
    var `public`: String?

    @Flag(help: "Overwrite existing key files.")
    var force = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.setUp()
        let publicPath = `public` ?? (URL(fileURLWithPath: output).deletingPathExtension().path + ".pub")
        guard publicPath != output else { throw CLIError(status: .usage, message: "\(output): the public key needs another path (--public)") }
        let key = SigningKey()
        let privateWriter = try AtomicFileWriter(path: output, overwrite: force)
        let publicWriter = try AtomicFileWriter(path: publicPath, overwrite: force)
        try privateWriter.write(Array(key.pem.utf8))
        try publicWriter.write(Array(key.publicKey.pem.utf8))
        try publicWriter.commit()
        try privateWriter.commit()
        // AtomicFileWriter makes files 0644; a private key is its owner's alone.
        chmod(output, 0o600)
        if common.json {
            Terminal.out(Terminal.json(["private": output, "public": publicPath, "fingerprint": key.publicKey.fingerprint]))
        } else if !common.quiet {
            Terminal.out("wrote \(output) (private, mode 600) and \(publicPath); key \(key.publicKey.fingerprint)")
        }
    }
}
