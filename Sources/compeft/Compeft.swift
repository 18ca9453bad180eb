import AdapterFormat
import ArgumentParser
import Commands
import Foundation

@main
struct Compeft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compeft",
        abstract: "Compress fine-tuned adapters to ternary task vectors (ComPEFT), and back.",
        discussion: """
            Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 input error (malformed, corrupt or \
            inconsistent input), 4 I/O error (missing file, output exists, disk full). With --json a failure \
            also prints {"error": {"exit_code", "status", "message", "file", "tensor"}} as the report.
            """,
        version: CompeftVersion.string,
        subcommands: [CompressCommand.self, DecompressCommand.self, MergeCommand.self, InspectCommand.self,
                      VerifyCommand.self, AnalyzeCommand.self,
                      PushCommand.self, PullCommand.self, TagsCommand.self, KeygenCommand.self])

    /// Runs a command and maps every failure to one line on stderr and compeft's exit codes; with
    /// `--json`, also to a JSON error report where the report would have gone.
    static func main() {
        Signals.install()
        let arguments = Array(CommandLine.arguments.dropFirst())
        let json = arguments.prefix { $0 != "--" }.contains("--json")
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                Terminal.out(fullMessage(for: error))
                Foundation.exit(0)
            }
            Terminal.err(fullMessage(for: error))
            if json { Terminal.out(Terminal.json(Reports.error(error, status: .usage, message: message(for: error)))) }
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
            let status = ExitStatus.of(error)
            Terminal.err("compeft: error: \(error)")
            if json {
                // The report goes where the command's report goes: stderr when stdout carries the data.
                let report = Terminal.json(Reports.error(error, status: status, message: "\(error)"))
                (command as? any WritesDataToStandardOutput)?.writesDataToStandardOutput == true
                    ? Terminal.err(report) : Terminal.out(report)
            }
            Foundation.exit(status.rawValue)
        }
    }
}

/// A command that can write its output (data, not its report) to standard output.
protocol WritesDataToStandardOutput {
    var writesDataToStandardOutput: Bool { get }
}

extension CompressCommand: WritesDataToStandardOutput {
    var writesDataToStandardOutput: Bool { output == "-" }
}

extension DecompressCommand: WritesDataToStandardOutput {
    var writesDataToStandardOutput: Bool { output == "-" }
}

extension MergeCommand: WritesDataToStandardOutput {
    var writesDataToStandardOutput: Bool { (try? plan().output) == "-" }
}

extension AnalyzeCommand: WritesDataToStandardOutput {
    var writesDataToStandardOutput: Bool { plot == "-" }
}
