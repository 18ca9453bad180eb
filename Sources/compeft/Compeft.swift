import AdapterFormat
import ArgumentParser
import Foundation

@main
struct Compeft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compeft",
        abstract: "Compress fine-tuned adapters to ternary task vectors (ComPEFT), and back.",
        discussion: """
            Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 input error (malformed, corrupt or \
            inconsistent input), 4 I/O error (missing file, output exists, disk full).
            """,
        version: CompeftVersion.string,
        subcommands: [CompressCommand.self, DecompressCommand.self, MergeCommand.self, InspectCommand.self,
                      VerifyCommand.self, AnalyzeCommand.self,
                      PushCommand.self, PullCommand.self, TagsCommand.self, KeygenCommand.self])

    /// Runs a command and maps every failure to one line on stderr and compeft's exit codes.
    static func main() {
        Signals.install()
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                Terminal.out(fullMessage(for: error))
                Foundation.exit(0)
            }
            Terminal.err(fullMessage(for: error))
            Foundation.exit(ExitStatus.usage.rawValue)
        }
        do {
            var command = command
            try command.run()
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch where exitCode(for: error) == .success {
            // `--help` and `help CMD` arrive here, thrown by the help command's run().
            Terminal.out(fullMessage(for: error))
            Foundation.exit(0)
        } catch {
            Terminal.err("compeft: error: \(error)")
            Foundation.exit(ExitStatus.of(error).rawValue)
        }
    }
}
