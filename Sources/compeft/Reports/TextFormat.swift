#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Human-readable sizes and ratios.
enum TextFormat {
    static func bytes(_ n: some BinaryInteger) -> String {
        let v = Double(n)
        if v < 1024 { return "\(n) B" }
        if v < 1024 * 1024 { return printf("%.1f KiB", v / 1024) }
        if v < 1024 * 1024 * 1024 { return printf("%.2f MiB", v / 1024 / 1024) }
        return printf("%.2f GiB", v / 1024 / 1024 / 1024)
    }

    static func ratio(_ a: Double, _ b: Double) -> String {
        b > 0 ? printf("%.2f×", a / b) : "–"
    }

    static func percent(_ x: Double) -> String { printf("%.2f%%", x * 100) }

    /// One number in a C format (`%.4g`, `%.2f`): the text `String(format:)` gives, without Foundation's
    /// string machinery, which costs tens of microseconds a call (the table of a million tensors calls it
    /// three million times).
    static func printf(_ format: String, _ value: Double) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 512) { buffer in
            let n = withVaList([value]) { vsnprintf(buffer.baseAddress!, buffer.count, format, $0) }
            precondition(n >= 0 && n < buffer.count, "format '\(format)' does not fit")
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress!, count: Int(n)), as: UTF8.self)
        }
    }

    /// Left-aligned text columns, right-aligned numbers, two spaces between.
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = [Int](repeating: 0, count: header.count)
        for row in CollectionOfOne(header).lazy + rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for (n, row) in (CollectionOfOne(header).lazy + rows).enumerated() {
            if n > 0 { out.append("\n") }
            var line = ""
            for (i, cell) in row.enumerated() {
                if i > 0 { line.append("  ") }
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if rightAligned.contains(i) {
                    line.append(pad)
                    line.append(cell)
                } else {
                    line.append(cell)
                    line.append(pad)
                }
            }
            out.append(contentsOf: trimmingWhitespace(line))
        }
        return out
    }

    /// `line` without the white space at its ends, as `trimmingCharacters(in: .whitespaces)` gives it.
    ///
    /// Lines whose ends are ASCII (every table row of ASCII names) are trimmed of spaces and tabs here, the
    /// only ASCII characters in that set; any other line is left to Foundation, whose set it is.
    static func trimmingWhitespace(_ line: String) -> Substring {
        let u = line.utf8
        func isBlank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }
        guard let first = u.firstIndex(where: { !isBlank($0) }) else { return "" }
        let last = u.lastIndex(where: { !isBlank($0) })!
        guard u[first] < 0x80, u[last] < 0x80 else { return Substring(line.trimmingCharacters(in: .whitespaces)) }
        return line[first...last]
    }
}
