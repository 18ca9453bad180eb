import Foundation

/// Runs `python3` for cross-checks against NumPy, `safetensors`, h5py and PEFT. Tests that need a package
/// are disabled with a visible reason (`.enabled(if: Python.has(…), "…")`) when it is absent, never passed.
public enum Python {
    /// Runs `python3 arguments…`; stdout and stderr together.
    public static func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Whether python3 can import every module.
    public static func has(_ modules: String...) -> Bool {
        run(["-c", "import " + modules.joined(separator: ", ")]).status == 0
    }

    public static let hasNumpyAndSafetensors = has("numpy", "safetensors")
    public static let hasPEFT = has("torch", "peft", "transformers")
}
