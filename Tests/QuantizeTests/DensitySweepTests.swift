import Quantize
import TaskVector
import Testing

@Suite struct DensitySweepTests {
    static let densities: [Double] = [0.5, 1, 5, 29, 50, 99, 100]

    func close(_ a: Double?, _ b: Double?, _ context: String, tolerance: Double = 1e-9) {
        switch (a, b) {
        case (nil, nil): break
        case let (a?, b?):
            #expect(abs(a - b) <= tolerance * max(1, abs(b)), "\(context): \(a) vs reference \(b)")
        default:
            #expect(Bool(false), "\(context): \(String(describing: a)) vs reference \(String(describing: b))")
        }
    }

    /// Relative errors come from sums (‖τ̂ − τ‖² = Σ dropped τ² + Σ kept (|τ| − s)²), so ε² is exact to
    /// about 1e-16 of ‖τ‖² and a near-perfect reconstruction's ε to about 1e-8: compare squares.
    func closeError(_ a: Double?, _ b: Double?, _ context: String) {
        switch (a, b) {
        case (nil, nil): break
        case let (a?, b?):
            #expect(abs(a * a - b * b) <= 1e-12 * max(1, b * b), "\(context): \(a) vs reference \(b)")
        default:
            #expect(Bool(false), "\(context): \(String(describing: a)) vs reference \(String(describing: b))")
        }
    }

    func check(_ f: DensityFigures, _ r: ReferenceSweep.Figures, _ context: String, checkScales: Bool) {
        #expect(f.statistics.count == r.count, "\(context)")
        #expect(f.statistics.kept == r.kept, "\(context)")
        #expect(f.statistics.keptNonzero == r.keptNonzero, "\(context)")
        close(f.keptFraction, r.count > 0 ? Double(r.keptNonzero) / Double(r.count) : 0, "\(context) kept fraction")
        close(f.energyShare, r.energyShare, "\(context) energy share")
        let pairs: [(String, Reconstruction, ReferenceSweep.Measure)] = [
            ("chosen", f.chosen, r.chosen), ("norm-preserving", f.normPreserving, r.normPreserving),
            ("L2-optimal", f.l2Optimal, r.l2Optimal), ("α·σ", f.alphaSigma, r.alphaSigma),
        ]
        for (what, got, want) in pairs {
            closeError(got.relativeError, want.error, "\(context) \(what) error")
            close(got.cosine, want.cosine, "\(context) \(what) cosine")
            close(got.normRatio, want.normRatio, "\(context) \(what) norm ratio")
            if checkScales { close(got.scale, want.scale, "\(context) \(what) scale", tolerance: 1e-12) }
        }
    }

    func sweep(_ parts: [[Float]], _ options: CompressionOptions, _ label: String) throws {
        let tensors = parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) }
        let points = try DensitySweep.run(tensors, options: options, kind: .other, densities: Self.densities.map(Density.percent))
        #expect(points.map(\.density.percent) == Self.densities)
        for point in points {
            let alpha: Double? = if case .value(let a) = options.alpha { a } else { nil }
            let ref = ReferenceSweep.run(parts, density: point.density.percent, scope: (options.scope ?? .global).rawValue,
                                         method: options.method.rawValue, alpha: alpha)
            let context = "\(label) K \(point.density) \(options.method) \(options.scope) α \(options.alpha)"
            #expect(point.tensors.count == parts.count)
            for (i, f) in point.tensors.enumerated() {
                check(f, ref.tensors[i], "\(context) tensor t\(i)", checkScales: true)
                #expect(f.threshold == ref.tensors[i].threshold, "\(context) tensor t\(i) threshold")
                close(f.sigma, ref.tensors[i].sigma, "\(context) tensor t\(i) σ", tolerance: 1e-12)
            }
            check(point.total, ref.total, "\(context) total", checkScales: false)
            if options.scope == .global {
                // One group: every tensor shares the scales, and so does the total.
                #expect(point.total.normPreserving.scale == point.tensors.first?.normPreserving.scale, "\(context)")
            }
        }
    }

    static let alphas: [CompressionOptions.Alpha] = [.auto, .value(2.5)]

    @Test(arguments: [CompressionOptions.Scope.global, .tensor], [CompressionOptions.Method.compeft, .stc])
    func figuresMatchReferenceOnRandomTiedAndSpecialValues(scope: CompressionOptions.Scope,
                                                           method: CompressionOptions.Method) throws {
        for seed in UInt64(1)...2 {
            for alpha in Self.alphas {
                let options = CompressionOptions(method: method, scope: scope, alpha: alpha)
                try sweep([Inputs.random(300, seed: seed), Inputs.random(1, seed: seed), Inputs.random(129, seed: seed + 9)],
                          options, "random seed \(seed)")
                try sweep([Inputs.ties(513, seed: seed), Inputs.ties(64, seed: seed + 5)], options, "ties seed \(seed)")
                try sweep([Inputs.special(77, seed: seed), []], options, "special seed \(seed)")
            }
        }
    }

    @Test(arguments: [CompressionOptions.Scope.global, .tensor])
    func figuresMatchReferenceAcrossChunkBoundaries(scope: CompressionOptions.Scope) throws {
        // Longer than one 64 Ki chunk, so sums cross chunks (and the tensors of a group).
        try sweep([Inputs.random(ResidualChunks.chunkSize + 13, seed: 5), Inputs.ties(1000, seed: 6)],
                  CompressionOptions(scope: scope), "multi-chunk")
    }

    @Test(arguments: [CompressionOptions.Scope.global, .tensor])
    func zeroAndConstantTensorsHaveUndefinedRatiosAndExactStorage(scope: CompressionOptions.Scope) throws {
        let parts: [[Float]] = [[Float](repeating: 0, count: 40), [Float](repeating: 0.3, count: 16), Inputs.random(50, seed: 7)]
        try sweep(parts, CompressionOptions(scope: scope), "zero/constant")
        let point = try #require(try DensitySweep.run(parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) },
                                                      options: .init(scope: scope), kind: .other, densities: [.percent(10)]).first)
        #expect(point.tensors[0].chosen.relativeError == nil && point.tensors[0].energyShare == nil)
        if scope == .tensor {
            // σ = 0: stored exactly, so the container's reconstruction is τ itself.
            #expect(point.tensors[1].storage == .exact && point.tensors[1].chosen.relativeError == 0)
            #expect(point.tensors[1].chosen.cosine.map { abs($0 - 1) < 1e-12 } == true)
        }
    }

    @Test func normPreservingScaleKeepsTheNormAndL2OptimalScaleHasTheLeastError() throws {
        let parts = [Inputs.random(2000, seed: 3), Inputs.random(500, seed: 4).map { $0 * 4 }]
        let tensors = parts.enumerated().map { sourceTensor("t\($0.offset)", $0.element) }
        for scope in [CompressionOptions.Scope.global, .tensor] {
            for point in try DensitySweep.run(tensors, options: .init(scope: scope), kind: .other, densities: [1, 5, 20, 50].map(Density.percent)) {
                let t = point.total
                #expect(abs(t.normPreserving.normRatio! - 1) < 1e-12, "K \(point.density) \(scope)")
                #expect(t.l2Optimal.relativeError! <= t.normPreserving.relativeError!, "K \(point.density) \(scope)")
                #expect(t.l2Optimal.relativeError! <= t.alphaSigma.relativeError!, "K \(point.density) \(scope)")
                #expect(t.l2Optimal.normRatio! < 1, "K \(point.density) \(scope): the L2-optimal scale under-scales")
                // α auto: the container's scale is the norm-preserving one, rounded to binary32.
                close(t.chosen.relativeError, t.normPreserving.relativeError, "K \(point.density) \(scope)", tolerance: 1e-6)
            }
        }
    }

    @Test func supportStatisticsMergeAcrossShiftsIsExact() {
        let a = Inputs.random(1000, seed: 21), b = Inputs.random(777, seed: 22)
        var whole = SupportStatistics(shift: 0.4)
        var left = SupportStatistics(shift: 0.4), right = SupportStatistics(shift: 0.9)
        let t = Float(0.5).bitPattern
        (a + b).withUnsafeBufferPointer { whole.add($0, thresholdBits: t) }
        a.withUnsafeBufferPointer { left.add($0, thresholdBits: t) }
        b.withUnsafeBufferPointer { right.add($0, thresholdBits: t) }
        left.merge(right)
        #expect(left.count == whole.count && left.kept == whole.kept && left.keptNonzero == whole.keptNonzero)
        for s in [0.0, 0.4, 0.75, 3] {
            close(left.ternary(scale: s).squaredError, whole.ternary(scale: s).squaredError, "scale \(s)", tolerance: 1e-12)
        }
        close(left.keptMeanMagnitude, whole.keptMeanMagnitude, "mean", tolerance: 1e-12)
    }
}
