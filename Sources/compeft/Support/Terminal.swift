#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Writing to stdout and stderr, and knowing whether stderr is a terminal.
enum Terminal {
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    static func out(_ text: String) {
        FileHandle.standardOutput.write((text + "\n").data(using: .utf8)!)
    }

    static func err(_ text: String) {
        FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
    }

    /// Serializes a JSON-compatible value with sorted keys.
    static func json(_ value: Any) -> String {
        let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
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
            amount = "\(Format.bytes(done)) of \(Format.bytes(total)), \(Format.bytes(Int(Double(done) / max(elapsed, 1e-9))))/s"
        }
        let line = String(format: "\r%@ %@ (%.0f%%), ETA %.0fs ", label, amount, fraction * 100, eta)
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    func finish() {
        guard drew else { return }
        FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
    }
}

/// Human-readable sizes and ratios.
enum Format {
    static func bytes(_ n: some BinaryInteger) -> String {
        let v = Double(n)
        if v < 1024 { return "\(n) B" }
        if v < 1024 * 1024 { return String(format: "%.1f KiB", v / 1024) }
        if v < 1024 * 1024 * 1024 { return String(format: "%.2f MiB", v / 1024 / 1024) }
        return String(format: "%.2f GiB", v / 1024 / 1024 / 1024)
    }

    static func ratio(_ a: Double, _ b: Double) -> String {
        b > 0 ? String(format: "%.2f×", a / b) : "–"
    }

    static func percent(_ x: Double) -> String { String(format: "%.2f%%", x * 100) }

    /// Left-aligned text columns, right-aligned numbers, two spaces between.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return all.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
