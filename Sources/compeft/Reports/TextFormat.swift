import Foundation

/// Human-readable sizes and ratios.
enum TextFormat {
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
