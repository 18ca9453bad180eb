import AdapterFormat
import Foundation
import Quantize
import TaskVector

/// The SVG chart of `analyze --plot`: compressed size (top) and reconstruction error (bottom) against
/// density, on a shared logarithmic density axis, each line labelled at its right end.
enum DensityPlot {
    struct Series {
        var label: String
        var detail: String
        var color: String
        var dash: String?
        var points: [(x: Double, y: Double)]
    }

    /// A mapping from data to pixels, linear or logarithmic.
    struct Axis {
        var lo: Double
        var hi: Double
        var pixelLo: Double
        var pixelHi: Double
        var log: Bool

        func callAsFunction(_ v: Double) -> Double {
            let t = log ? (Foundation.log10(v) - Foundation.log10(lo)) / (Foundation.log10(hi) - Foundation.log10(lo))
                        : (v - lo) / (hi - lo)
            return pixelLo + t * (pixelHi - pixelLo)
        }
    }

    static let width = 800.0
    static let height = 640.0
    static let left = 84.0
    static let right = 560.0

    /// 1-2-5 ticks covering [lo, hi], with the range widened to the nearest ticks outside it.
    static func logTicks(_ lo: Double, _ hi: Double) -> (ticks: [Double], lo: Double, hi: Double) {
        let mantissas = [1.0, 2, 5]
        var candidates: [Double] = []
        for e in Int(floor(log10(lo))) - 1...Int(ceil(log10(hi))) + 1 {
            for m in mantissas { candidates.append(m * pow(10, Double(e))) }
        }
        let below = candidates.last { $0 <= lo } ?? lo
        let above = candidates.first { $0 >= hi } ?? hi
        return (candidates.filter { $0 >= below * 0.999 && $0 <= above * 1.001 }, below, above)
    }

    /// 108419 → "108,419".
    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n.magnitude))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func tickLabel(_ v: Double) -> String {
        v >= 1000 ? String(format: "%.0f", v) : String(format: "%g", v)
    }

    static func render(_ a: DensityAnalysis) -> String {
        var svg = SVGDocument(width: width, height: height)
        let name = URL(fileURLWithPath: a.input).lastPathComponent
            + (a.base.map { " − " + URL(fileURLWithPath: $0).lastPathComponent } ?? "")
        let densities = a.densities.map(\.point.density.percent)
        let kMin = densities.min() ?? 1, kMax = densities.max() ?? 100
        let x = Axis(lo: kMin == kMax ? kMin / 2 : kMin / 1.3, hi: kMin == kMax ? kMax * 2 : kMax * 1.3,
                     pixelLo: left, pixelHi: right, log: true)
        let alpha = a.rule.alpha == .auto ? "α auto" : "α = \(a.rule.alpha)"
        svg.text(left, 30, "compeft analyze: \(name)", size: 17, weight: "bold")
        svg.text(left, 50, "\(a.rule.method.rawValue), \(a.rule.scope.rawValue) scope, \(alpha) · "
                 + "\(grouped(a.residualValues)) residual values in \(a.residualTensors) tensors · sizes from the real encoder",
                 size: 12, fill: "#555")

        // Top panel: bits per residual value, log scale.
        let container = Series(
            label: "whole container", detail: "incl. index and exact tensors", color: "#1f4e99", dash: nil,
            points: a.densities.compactMap { d in d.containerBitsPerParameter.map { (d.point.density.percent, $0) } })
        let payload = Series(
            label: "residual payloads", detail: "the ternary codes only", color: "#2a9d8f", dash: nil,
            points: a.densities.compactMap { d in d.bitsPerParameter.map { (d.point.density.percent, $0) } })
        let sizeValues = (container.points + payload.points).map(\.y).filter { $0 > 0 }
        let top = (y0: 90.0, y1: 290.0)
        svg.text(left, top.y0 - 12, "Compressed size", size: 14, weight: "bold")
        if let lo = sizeValues.min(), let hi = sizeValues.max() {
            let ticks = logTicks(lo / 1.15, hi * 1.15)
            let y = Axis(lo: ticks.lo, hi: ticks.hi, pixelLo: top.y1, pixelHi: top.y0, log: true)
            frame(&svg, x: x, y: y, yTicks: ticks.ticks, densities: densities, panel: top)
            axisTitle(&svg, "bits per parameter (log)", panel: top)
            draw(&svg, [container, payload], x: x, y: y, panel: top)
            // Container size in bytes above its points.
            for d in a.densities {
                guard let v = d.containerBitsPerParameter, v > 0 else { continue }
                svg.text(x(d.point.density.percent), y(v) - 8, TextFormat.bytes(d.sizes.containerBytes), size: 10, anchor: "middle",
                         fill: "#1f4e99")
            }
        } else {
            svg.text((left + right) / 2, (top.y0 + top.y1) / 2, "no residual values", size: 13, anchor: "middle", fill: "#555")
        }

        // Bottom panel: relative L2 error, linear.
        let bottom = (y0: 352.0, y1: 552.0)
        svg.text(left, bottom.y0 - 12, "Reconstruction error", size: 14, weight: "bold")
        let chosenLabel = a.rule.method == .stc ? "ternary ±α·mean|kept|, \(alpha) (stc)" : "ternary ±s, \(alpha) (compeft)"
        let chosen = Series(label: chosenLabel, detail: "what the container decodes to", color: "#c0392b", dash: nil,
                            points: a.densities.compactMap { d in d.point.total.chosen.relativeError.map { (d.point.density.percent, $0) } })
        let optimal = Series(label: "ternary ±mean|kept|", detail: "L2-optimal scale (under-scales)", color: "#e67e22",
                             dash: "7 4",
                             points: a.densities.compactMap { d in d.point.total.l2Optimal.relativeError.map { (d.point.density.percent, $0) } })
        let floor = Series(label: "top-k kept as they are", detail: "no ternary: √(1 − share of ‖τ‖² kept)", color: "#6c7a89",
                           dash: "2 4",
                           points: a.densities.compactMap { d in d.point.total.energyShare.map { (d.point.density.percent, max(0, 1 - $0).squareRoot()) } })
        // The floor first, so the ternary lines are drawn over it where they meet.
        let errors = [floor, optimal, chosen]
        let maxError = errors.flatMap { $0.points.map(\.y) }.max() ?? 1
        let step = maxError <= 1.2 ? 0.2 : 0.5
        let yMax = max(1, (maxError / step).rounded(.up) * step)
        let ey = Axis(lo: 0, hi: yMax, pixelLo: bottom.y1, pixelHi: bottom.y0, log: false)
        frame(&svg, x: x, y: ey, yTicks: stride(from: 0, through: yMax + step / 2, by: step).map { $0 }, densities: densities,
              panel: bottom)
        axisTitle(&svg, "relative L2 error ‖τ̂ − τ‖ / ‖τ‖", panel: bottom)
        // ε = 1 is what sending nothing (τ̂ = 0) scores: a ternary code above it is worse than no update.
        svg.line(left, ey(1), right, ey(1), stroke: "#999", width: 1, dash: "5 3")
        svg.text(left + 6, ey(1) - 5, "τ̂ = 0 scores 1", size: 10.5, fill: "#777")
        draw(&svg, errors, x: x, y: ey, panel: bottom)
        svg.text((left + right) / 2, bottom.y1 + 42, "density K: % of residual values kept (log scale)", size: 13,
                 anchor: "middle")
        return svg.render(
            title: "compeft analyze: \(name)",
            description: "Compressed size in bits per parameter and relative L2 reconstruction error against density "
                + densities.map { String(format: "%g%%", $0) }.joined(separator: ", ") + " for \(a.input).")
    }

    /// Grid, ticks and tick labels of one panel.
    static func frame(_ svg: inout SVGDocument, x: Axis, y: Axis, yTicks: [Double], densities: [Double],
                      panel: (y0: Double, y1: Double)) {
        svg.rect(left, panel.y0, right - left, panel.y1 - panel.y0, fill: "#fafafa", stroke: "#bbb")
        for t in yTicks {
            let py = y(t)
            guard py >= panel.y0 - 0.5 && py <= panel.y1 + 0.5 else { continue }
            svg.line(left, py, right, py, stroke: "#e3e3e3")
            svg.line(left - 5, py, left, py, stroke: "#555")
            svg.text(left - 8, py + 4, tickLabel(t), size: 11, anchor: "end", fill: "#333")
        }
        var lastLabel = -Double.infinity
        for k in densities.sorted() {
            let px = x(k)
            svg.line(px, panel.y0, px, panel.y1, stroke: "#ececec")
            svg.line(px, panel.y1, px, panel.y1 + 5, stroke: "#555")
            if px - lastLabel >= 26 {
                svg.text(px, panel.y1 + 18, String(format: "%g%%", k), size: 11, anchor: "middle", fill: "#333")
                lastLabel = px
            }
        }
    }

    static func axisTitle(_ svg: inout SVGDocument, _ title: String, panel: (y0: Double, y1: Double)) {
        svg.text(24, (panel.y0 + panel.y1) / 2, title, size: 12, anchor: "middle", fill: "#333", rotate: -90)
    }

    /// Lines, points, and a two-line label right of each line's last point, spread so labels never overlap.
    static func draw(_ svg: inout SVGDocument, _ series: [Series], x: Axis, y: Axis, panel: (y0: Double, y1: Double)) {
        var labels: [(y: Double, series: Series)] = []
        for s in series where !s.points.isEmpty {
            let pts = s.points.sorted { $0.x < $1.x }.map { (x($0.x), y($0.y)) }
            svg.polyline(pts, stroke: s.color, width: s.dash == nil ? 2.4 : 2, dash: s.dash)
            for p in pts { svg.circle(p.0, p.1, r: 3.2, fill: s.color) }
            labels.append((pts.last!.1, s))
        }
        // Place labels top to bottom at least `gap` apart, then pull the block back inside the panel.
        let gap = 30.0
        labels.sort { $0.y < $1.y }
        var ys = labels.map(\.y)
        for i in ys.indices.dropFirst() { ys[i] = max(ys[i], ys[i - 1] + gap) }
        if let last = ys.last, last > panel.y1 - 6 {
            let shift = last - (panel.y1 - 6)
            ys = ys.map { $0 - shift }
            for i in ys.indices.reversed().dropFirst() { ys[i] = min(ys[i], ys[i + 1] - gap) }
        }
        let lastX = series.compactMap { $0.points.map(\.x).max() }.max().map { x($0) } ?? right
        for (i, l) in labels.enumerated() {
            let ly = ys[i]
            svg.line(lastX + 6, l.y, right + 8, ly, stroke: l.series.color, width: 1)
            svg.text(right + 12, ly, l.series.label, size: 12, fill: l.series.color, weight: "bold")
            svg.text(right + 12, ly + 14, l.series.detail, size: 10.5, fill: "#555")
        }
    }
}
