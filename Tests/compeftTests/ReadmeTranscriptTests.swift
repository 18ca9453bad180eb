import Foundation
import Testing

/// The README as executable documentation (issue 17 §6): its `$ compeft …` transcripts run, in a scratch
/// folder, against the fixtures, and every output line they show — numbers included — must be what the
/// command prints. A line `…` in a transcript stands for any number of lines.
///
/// ``ReadmeTranscriptTests/runs`` is the one list of the transcripts that run; ``ReadmeTranscriptTests/notRun``
/// names the others and why. A transcript in neither list fails the test, so a new example is either run
/// or explicitly left out.
@Suite(.requiresPython("numpy", "safetensors", install: "pip install numpy safetensors"))
struct ReadmeTranscriptTests {
    /// The transcripts that run, by their command, in README order (later ones read what earlier ones wrote).
    static let runs = [
        "compeft compress my-lora -o my-lora.cpeft --density 10",
        "compeft decompress my-lora.cpeft -o restored",
        "compeft merge math-lora code-lora -o merged --method ties --density 20 --weights 1,0.5",
        "compeft inspect my-lora.cpeft",
        "compeft verify my-lora.cpeft",
        "compeft analyze Fixtures/files/full-ft --base Fixtures/files/tiny-bert --plot sweep.svg",
        "compeft analyze Fixtures/files/lora-bert-seqcls --densities 5,10,20,50 --target-error 0.7",
    ]

    /// Transcripts that do not run here, each with the reason.
    static let notRun: [String: String] = [
        "compeft keygen -o key.pem": "prints a new random key's fingerprint",
        "compeft push": "needs a registry (ExchangeTests run one)",
        "compeft tags": "needs a registry",
        "compeft pull": "needs a registry",
        "compeft inspect localhost:5000": "needs a registry",
        "compeft decompress localhost:5000": "needs a registry",
        "cmp pulled.cpeft": "needs a registry",
    ]

    /// Every `$ …` transcript of the README: the command and the lines shown after it.
    static func transcripts() throws -> [(command: String, lines: [String])] {
        let readme = try String(contentsOfFile: repositoryRoot + "/README.md", encoding: .utf8)
        var out: [(command: String, lines: [String])] = []
        var inBlock = false
        var current: Int?  // the transcript the lines belong to, within one block
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("```") {
                inBlock.toggle()
                current = nil
                continue
            }
            guard inBlock else { continue }
            if line.hasPrefix("$ ") {
                out.append((String(line.dropFirst(2)), []))
                current = out.count - 1
            } else if let current {
                out[current].lines.append(line)
            }
        }
        // A transcript ends at its block's end: drop trailing blank lines.
        return out.map { t in
            var lines = t.lines
            while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
            return (t.command, lines)
        }
    }

    /// Whether `actual` shows `expected`: the same lines (trailing spaces aside), where a `…` line in
    /// `expected` matches any number of lines. Returns the first expected line not found, or nil.
    static func mismatch(expected: [String], actual: [String]) -> String? {
        let trim = { (s: String) in s.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        let actual = actual.map(trim)
        var segments: [[String]] = [[]]
        for line in expected.map(trim) {
            if line == "…" { segments.append([]) } else { segments[segments.count - 1].append(line) }
        }
        var at = 0
        for (i, segment) in segments.enumerated() where !segment.isEmpty {
            let anchoredStart = i == 0, anchoredEnd = i == segments.count - 1
            var found: Int?
            var start = at
            while start + segment.count <= actual.count {
                if Array(actual[start..<start + segment.count]) == segment,
                   !anchoredEnd || start + segment.count == actual.count {
                    found = start
                    break
                }
                if anchoredStart { break }
                start += 1
            }
            guard let f = found else {
                // Name the first line of the segment that differs from the best place it could start.
                return segment.first { !actual[at...].contains($0) } ?? segment[0]
            }
            at = f + segment.count
        }
        return nil
    }

    @Test func everyTranscriptIsRunOrLeftOutWithAReason() throws {
        let commands = try Self.transcripts().map(\.command)
        for c in commands {
            let listed = Self.runs.contains(c) || Self.notRun.keys.contains { c.hasPrefix($0) }
            #expect(listed, "README transcript '$ \(c)' is neither run nor left out with a reason")
        }
        for c in Self.runs { #expect(commands.contains(c), "'\(c)' is no longer in the README") }
    }

    @Test func transcriptsPrintWhatTheReadmeShows() throws {
        let dir = scratchDirectory("readme-transcripts")
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: dir + "/Fixtures", withDestinationPath: repositoryRoot + "/Fixtures")
        for name in ["my-lora", "math-lora", "code-lora"] {
            try fm.copyItem(atPath: fixture("lora-bert-seqcls"), toPath: dir + "/" + name)
        }
        // code-lora: the fixture's LoRA factors with their values in reverse order (same magnitudes, another adapter).
        let perturb = """
            import sys, numpy as np
            from safetensors.numpy import load_file, save_file
            path = sys.argv[1]
            t = load_file(path)
            save_file({k: (np.ascontiguousarray(v.ravel()[::-1].reshape(v.shape)) if ".lora_" in k else v) for k, v in t.items()},
                      path, metadata={"format": "pt"})
            """
        _ = try Python.output(perturb, arguments: [dir + "/code-lora/adapter_model.safetensors"])
        let byCommand = Dictionary(try Self.transcripts().map { ($0.command, $0.lines) }, uniquingKeysWith: { a, _ in a })
        let path = URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for command in Self.runs {
            let expected = try #require(byCommand[command], "'\(command)' is not in the README")
            let r = Tool.run("/bin/bash", ["-c", command + " 2>&1"], in: dir, environment: ["PATH": path, "COLUMNS": "200"])
            #expect(r.status == 0, "$ \(command)\n\(r.output)")
            let actual = r.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let trimmed = Array(actual.reversed().drop { $0.isEmpty }.reversed())
            if let line = Self.mismatch(expected: expected, actual: trimmed) {
                Issue.record("README: '$ \(command)' shows a line the command does not print:\n  \(line)\nit printed:\n\(r.output)")
            }
        }
    }

    /// The matcher itself: a changed number, a missing line or an extra line where none may be is caught.
    @Test func theMatcherCatchesAChangedNumber() {
        let actual = ["a 1.00", "b 2.00", "c 3.00"]
        #expect(Self.mismatch(expected: actual, actual: actual) == nil)
        #expect(Self.mismatch(expected: ["a 1.00", "…", "c 3.00"], actual: actual) == nil)
        #expect(Self.mismatch(expected: ["a 1.00", "b 2.01", "c 3.00"], actual: actual) == "b 2.01")
        #expect(Self.mismatch(expected: ["a 1.00", "b 2.00"], actual: actual) != nil, "an unshown last line needs …")
        #expect(Self.mismatch(expected: ["b 2.00", "…"], actual: actual) != nil, "an unshown first line needs …")
    }
}
