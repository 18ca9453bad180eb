#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TaskVector

/// Writing to stdout and stderr, and knowing whether stderr is a terminal.
enum Terminal {
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    static func out(_ text: String) {
        // Straight from the string's bytes: a --json report of a million tensors is hundreds of MB.
        var text = text
        text.withUTF8(writeOut)
        [UInt8(ascii: "\n")].withUnsafeBufferPointer(writeOut)
    }

    /// A JSON report (sorted keys, pretty), written as it is made: see ``JSONText/write(_:pretty:to:)``.
    static func outJSON(_ value: Any) {
        JSONText.write(value, pretty: true) { writeOut($0.assumingMemoryBound(to: UInt8.self)) }
        [UInt8(ascii: "\n")].withUnsafeBufferPointer(writeOut)
    }

    private static func writeOut(_ bytes: UnsafeBufferPointer<UInt8>) {
        var done = 0
        while done < bytes.count {
            let n = write(STDOUT_FILENO, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }

    static func err(_ text: String) {
        FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
    }

    /// A warning on stderr: `compeft: warning: …`.
    static func warn(_ text: String) {
        err("compeft: warning: " + text)
    }

    /// Serializes a JSON-compatible value with sorted keys.
    static func json(_ value: Any) -> String {
        JSONText.serialize(value, pretty: true)  // JSONSerialization's text (sorted keys, pretty), faster
    }
}

/// A progress line on stderr — done, rate, ETA — shown only when stderr is a terminal and the work has
/// taken longer than a second; nothing at all otherwise.
final class Progress {
    enum Unit { case items, bytes }

    private let label: String
    private let enabled: Bool
    private let unit: Unit
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drew = false

    init(_ label: String, quiet: Bool, unit: Unit = .items) {
        self.label = label
        self.unit = unit
        enabled = !quiet && Terminal.stderrIsTTY
    }

    func update(_ done: Int, _ total: Int) {
        guard enabled else { return }
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        guard elapsed > 1, now.timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = now
        drew = true
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let eta = fraction > 0 ? elapsed / fraction - elapsed : 0
        let amount: String
        switch unit {
        case .items: amount = "\(done)/\(total)"
        case .bytes:
            amount = "\(TextFormat.bytes(done)) of \(TextFormat.bytes(total)), \(TextFormat.bytes(Int(Double(done) / max(elapsed, 1e-9))))/s"
        }
        let line = String(format: "\r%@ %@ (%.0f%%), ETA %.0fs ", label, amount, fraction * 100, eta)
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    func finish() {
        guard drew else { return }
        FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
    }
}
