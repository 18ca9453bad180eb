import AdapterFormat
import ArgumentParser
import Commands
import Foundation
import TaskVector

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every checksum of a .cpeft container and that every payload decodes.",
        discussion: """
            Exits 0 when the container is intact, 1 when anything is wrong (each problem is named on stderr).

            Example:
              compeft verify my-lora.cpeft && echo intact
            """)

    @Argument(help: "Container path, or '-' for stdin.")
    var input: String

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.setUp()
        let result = try ContainerVerification(path: input)
        if common.json {
            Terminal.out(Terminal.json(CommandReports.verify(result)))
        } else {
            for p in result.problems { Terminal.err("compeft: \(p)") }
            if !common.quiet {
                Terminal.out(result.problems.isEmpty ? "\(input): ok (\(result.checked) payloads verified)"
                                                      : "\(input): FAILED (\(result.problems.count) problem(s))")
            }
        }
        if !result.problems.isEmpty { throw ExitCode(ExitStatus.verificationFailed.rawValue) }
    }
}
