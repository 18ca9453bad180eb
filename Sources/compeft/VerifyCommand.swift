import AdapterFormat
import ArgumentParser
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
        let reader: ContainerReader
        do {
            reader = try ContainerReader(path: input)
        } catch let e as FormatError where e.code != .io {
            report(ok: false, problems: [e.description], checked: 0)
            throw ExitCode(ExitStatus.verificationFailed.rawValue)
        }
        var problems: [String] = []
        for f in reader.index.files {
            do { _ = try reader.contents(of: f) } catch { problems.append("\(error)") }
        }
        do { _ = try reader.checkedAdapterConfig() } catch let error as TaskVectorError {
            problems.append("\(error)")  // a config that disagrees with the tensors
        } catch {}  // its payload cannot be read: reported above
        for t in reader.index.tensors {
            do { try reader.verify(t) } catch { problems.append("\(error)") }
        }
        report(ok: problems.isEmpty, problems: problems, checked: reader.index.tensors.count + reader.index.files.count)
        if !problems.isEmpty { throw ExitCode(ExitStatus.verificationFailed.rawValue) }
    }

    private func report(ok: Bool, problems: [String], checked: Int) {
        if common.json {
            Terminal.out(Terminal.json(["file": input, "ok": ok, "checked": checked, "problems": problems] as [String: Any]))
            return
        }
        for p in problems { Terminal.err("compeft: \(p)") }
        if !common.quiet {
            Terminal.out(ok ? "\(input): ok (\(checked) payloads verified)" : "\(input): FAILED (\(problems.count) problem(s))")
        }
    }
}
