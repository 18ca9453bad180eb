/// Tables whose columns are grouped under a heading.
extension TextFormat {
    /// Like ``table(_:_:rightAligned:)``, with a line of group headings above the header: each heading
    /// starts at its first column and is underlined across its columns (which widen to fit it).
    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = [],
                      groups: [(title: String, columns: Range<Int>)]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        let gap = 2
        for g in groups where !g.columns.isEmpty {
            let span = g.columns.reduce(0) { $0 + widths[$1] } + gap * (g.columns.count - 1)
            if span < g.title.count { widths[g.columns.upperBound - 1] += g.title.count - span }
        }
        // Column start positions, to place the headings.
        var starts: [Int] = []
        var x = 0
        for w in widths {
            starts.append(x)
            x += w + gap
        }
        func place(_ pieces: [(Int, String)]) -> String {
            var line = ""
            for (at, text) in pieces {
                if line.count < at { line += String(repeating: " ", count: at - line.count) }
                line += text
            }
            return line
        }
        let spanWidth = { (g: Range<Int>) in g.reduce(0) { $0 + widths[$1] } + gap * (g.count - 1) }
        let titles = place(groups.map { g in
            let text = g.title + " " + String(repeating: "─", count: max(0, spanWidth(g.columns) - g.title.count - 1))
            return (starts[g.columns.lowerBound], text)
        })
        let body = all.map { row in
            row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: String(repeating: " ", count: gap))
        }
        // Trailing blanks only: a right-aligned first column keeps its leading padding.
        return ([titles] + body).map { line in String(line.reversed().drop { $0 == " " }.reversed()) }
            .joined(separator: "\n")
    }
}
