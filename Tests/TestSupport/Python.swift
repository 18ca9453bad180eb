public import Foundation
public import Testing

/// Runs `python3` for cross-checks against NumPy, `safetensors`, h5py and PEFT.
///
/// A test that needs a package takes ``Testing/Trait/requiresPython(_:install:)``: for a user without the
/// package it is skipped with the reason, never passed; under CI (`CI=true`, where `scripts/bootstrap.sh`
/// installs every package) it runs, and so fails when a package is missing.
public enum Python {
    /// Runs `python3 arguments…`; stdout and stderr together.
    public static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        guard let python = Tool.find("python3") else { return (-1, "python3 is not on PATH") }
        let result = Tool.run(python, arguments)
        return (result.status, result.output)
    }

    /// Whether python3 can import every module.
    public static func has(_ modules: String...) -> Bool { has(modules) }

    public static func has(_ modules: [String]) -> Bool {
        run(["-c", "import " + modules.joined(separator: ", ")]).status == 0
    }

    /// Runs `python3 -c script arguments…` and returns its stdout.
    ///
    /// - Throws: ``Failure`` with the exit status and stderr when it fails.
    public static func output(_ script: String, arguments: [String] = []) throws -> Data {
        guard let python = Tool.find("python3") else { throw Failure(status: -1, message: "python3 is not on PATH") }
        let result = Tool.run(python, ["-c", script] + arguments)
        guard result.status == 0 else { throw Failure(status: result.status, message: result.stderr) }
        return result.stdout
    }

    /// A Python run that failed.
    public struct Failure: Error, CustomStringConvertible {
        public var status: Int32
        public var message: String
        public var description: String { "python3 exited with \(status): \(message)" }
    }

    public static let hasNumpyAndSafetensors = has("numpy", "safetensors")

    /// Whether the tests run under CI: the environment variable `CI` is `true` (or `1`).
    public static let isCI = ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"]?.lowercased() ?? "")
}

extension Trait where Self == ConditionTrait {
    /// Runs the test when python3 can import `modules`; otherwise skips it, saying what to install —
    /// except under CI, where it runs anyway, so a missing package is a failure, not a skip.
    public static func requiresPython(_ modules: String..., install: String) -> Self {
        let available = Python.has(modules)
        return .enabled(if: available || Python.isCI, "needs python3 with \(modules.joined(separator: ", ")) (\(install))")
    }

    /// Runs the test when one of `programs` is on PATH; otherwise skips it, saying what to install — except
    /// under CI, where it runs anyway, so a missing program is a failure, not a skip.
    public static func requiresTool(_ programs: String..., install: String) -> Self {
        let available = programs.contains { Tool.find($0) != nil }
        return .enabled(if: available || Python.isCI, "needs \(programs.joined(separator: " or ")) on PATH (\(install))")
    }
}
