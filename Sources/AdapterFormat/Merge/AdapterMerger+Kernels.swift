import Foundation
import Quantize
import TaskVector

/// The per-unit merges: residual tensors (on ternary codes or dense), kept tensors, LoRA modules,
/// and the global thresholds.
extension AdapterMerger {
    /// Which path a residual tensor took.
    public enum Path: String, Sendable {
        /// ``TernaryMerge`` on the experts' mask and sign bits.
        case ternary
        /// Every expert expanded to floats, then ``TensorMerge``.
        case dense
    }

    /// The combination ``TernaryMerge`` runs for this method, when the method can run on ternary codes.
    var ternaryCombination: Combination? {
        switch options.method {
        case .taskArithmetic, .magnitudePrune: .sum
        case .ties(_, let election): .disjointMean(election)
        case .dareLinear, .dareTies: nil
        }
    }

    // MARK: - Global thresholds

    /// Finds each expert's magnitude threshold over all of its merged residuals, for
    /// `--scope global` with a method that trims by magnitude; `nil` otherwise.
    func findThresholds() throws -> [MagnitudeThreshold]? {
        guard options.scope == .global, options.method.trimsByMagnitude else { return nil }
        var total = 0
        for unit in units {
            switch unit {
            case .residual(let name, _): total += sources[0].tensor(name)!.count
            case .lora(let m) where m.how == .denseSVD: total += m.outFeatures * m.inFeatures
            default: break
            }
        }
        return try sources.indices.map { e in
            try MagnitudeThreshold.global(count: total, density: options.method.density, expert: sources[e].path) { body in
                for unit in units {
                    switch unit {
                    case .residual(let name, let expected):
                        let values = try residual(of: e, name: name, expected: expected)
                        values.withUnsafeBufferPointer { body($0) }
                    case .lora(let m) where m.how == .denseSVD:
                        let delta = try factors(of: e, module: m).deltaWeight.floats
                        delta.withUnsafeBufferPointer { body($0) }
                    default:
                        break
                    }
                }
            }
        }
    }

    // MARK: - Residual tensors

    /// Merges the residual tensor `name` of every input.
    ///
    /// - Returns: the merged residual and the path that computed it.
    func mergeResidual(_ name: String, expected: InitRule?) throws -> (values: [Float], path: Path) {
        let n = sources[0].tensor(name)!.count
        let lambda = Float(options.lambda)
        var codes = [TernaryExpert?](repeating: nil, count: sources.count)
        if !options.expand, let combination = ternaryCombination, sources.allSatisfy({ $0.format == .container }) {
            for (e, s) in sources.enumerated() {
                codes[e] = try s.ternaryExpert(name, expected: expected)
                if codes[e] == nil { break }
            }
            let experts = codes.compactMap { $0 }
            if experts.count == sources.count, trimKeepsSupport(of: experts, count: n) {
                log?("\(name): ternary path (\(experts.count) experts, \(experts.map(\.code.nonzeroCount).reduce(0, +)) non-zeros)")
                return (TernaryMerge.merge(experts, weights: floatWeights, combination: combination, lambda: lambda), .ternary)
            }
        }
        var buffers: [[Float]] = []
        buffers.reserveCapacity(sources.count)
        for e in sources.indices {
            if let code = codes[e] {
                buffers.append(code.expanded())
            } else {
                buffers.append(try residual(of: e, name: name, expected: expected))
            }
        }
        let merged = TensorMerge.merge(buffers, weights: floatWeights, method: options.method, lambda: lambda,
                                       thresholds: options.method.trimsByMagnitude ? thresholds : nil,
                                       seed: options.seed, tensor: name)
        let why = codes.allSatisfy { $0 != nil } ? "; the method's trim cuts into a ternary support"
            : codes.contains { $0 != nil } ? "; not every input stores it as a ternary code" : ""
        log?("\(name): dense path (\(sources.count) experts expanded\(why))")
        return (merged, .dense)
    }

    /// Whether the method's trim keeps every non-zero of every ternary expert, so that merging the
    /// codes directly equals merging the trimmed dense experts.
    func trimKeepsSupport(of experts: [TernaryExpert], count: Int) -> Bool {
        let method = options.method
        guard method.trimsByMagnitude, method.density != .full else { return true }
        if let thresholds {
            return zip(experts, thresholds).allSatisfy { expert, t in
                expert.code.nonzeroCount == 0
                    || (t.tiesKept == .max && expert.scale.magnitude.bitPattern >= t.bits)
            }
        }
        let k = method.density.keepCount(of: count)
        return experts.allSatisfy { $0.code.nonzeroCount <= k }
    }

    /// Expert `e`'s residual of `name`, checked to be finite.
    func residual(of e: Int, name: String, expected: InitRule?) throws -> [Float] {
        let s = sources[e]
        let n = s.tensor(name)!.count
        let values = try [Float](unsafeUninitializedCapacity: n) { out, initialized in
            out.initialize(repeating: 0)
            initialized = n
            try s.loadResidual(name, expected: expected, base: base, into: out)
        }
        try checkFinite(values, source: s, name: name)
        return values
    }

    func checkFinite(_ values: [Float], source: MergeSource, name: String) throws {
        var finite = true
        values.withUnsafeBufferPointer { v in
            for x in v where !x.isFinite { finite = false; break }
        }
        guard finite else {
            throw TaskVectorError(.nonFinite, file: source.path, tensor: name, "holds NaN or ±Inf; cannot merge it")
        }
    }

    // MARK: - Kept tensors

    /// A tensor that is not a residual: the first input's bytes when every input holds the same
    /// values; else, for a float tensor, the method's merge of the values (from 0).
    ///
    /// - Returns: the bytes to write (in the first input's dtype) or the values to encode, and
    ///   whether it was copied.
    func mergeKept(_ name: String) throws -> (bytes: [UInt8]?, values: [Float]?, copied: Bool) {
        let first = sources[0]
        let t = first.tensor(name)!
        guard t.dtype.isFloatingPoint else {
            let bytes = try first.originalBytes(name)!
            for s in sources.dropFirst() where try s.originalBytes(name) != bytes {
                throw TaskVectorError(.mismatch, tensor: name,
                                      "\(t.dtype.rawValue) values differ between '\(first.path)' and '\(s.path)'; a non-float tensor cannot be merged")
            }
            return (bytes, nil, true)
        }
        let values = try sources.map { try $0.values(name, base: base) }
        let identical = values.dropFirst().allSatisfy { v in v.map(\.bitPattern) == values[0].map(\.bitPattern) }
        if identical {
            if let bytes = try first.originalBytes(name) { return (bytes, nil, true) }
            return (nil, values[0], true)
        }
        for (s, v) in zip(sources, values) { try checkFinite(v, source: s, name: name) }
        let merged = TensorMerge.merge(values, weights: floatWeights, method: options.method, lambda: Float(options.lambda),
                                       seed: options.seed, tensor: name)
        log?("\(name): not a residual and not identical in every input; merged as values")
        return (nil, merged, false)
    }

    // MARK: - LoRA modules

    /// Expert `e`'s factors of module `m`, with its scale.
    func factors(of e: Int, module m: LoRAModule) throws -> LoRAFactors {
        let s = sources[e]
        let a = try s.values(m.a, base: nil)
        let b = try s.values(m.b, base: nil)
        try checkFinite(a, source: s, name: m.a)
        try checkFinite(b, source: s, name: m.b)
        let scaling = configs[e].scaling(module: m.key, rank: m.ranks[e])
        return LoRAFactors(a: a, b: b, inFeatures: m.inFeatures, outFeatures: m.outFeatures, scaling: scaling)
    }

    /// Merges one LoRA module as its ``LoRAModuleMerge`` says.
    func mergeModule(_ m: LoRAModule) throws -> LoRAFactors {
        let adapters = try sources.indices.map { try factors(of: $0, module: m) }
        let scaled = options.weights.map { $0 * options.lambda }
        var energy: Double?
        var result: LoRAFactors
        switch m.how {
        case .concat:
            result = try LoRAMerge.exact(adapters, weights: scaled, module: m.module)
        case .svd:
            let t = try LoRAMerge.truncated(adapters, weights: scaled, rank: m.outRank, module: m.module)
            result = t.factors
            energy = t.discardedEnergy
        case .denseSVD:
            let merged = TensorMerge.merge(adapters.map { $0.deltaWeight.floats }, weights: floatWeights, method: options.method,
                                           lambda: Float(options.lambda), thresholds: options.method.trimsByMagnitude ? thresholds : nil,
                                           seed: options.seed, tensor: m.module)
            guard merged.allSatisfy(\.isFinite) else {
                throw TaskVectorError(.nonFinite, tensor: m.module, "the merged update overflows Float")
            }
            let t = LoRAMerge.truncated(Matrix(rows: m.outFeatures, cols: m.inFeatures, floats: merged), rank: m.outRank)
            result = t.factors
            energy = t.discardedEnergy
        case .factors:
            result = try LoRAMerge.factors(adapters, weights: options.weights, method: options.method, seed: options.seed,
                                           module: m.module)
            if options.lambda != 1 {
                let lambda = Float(options.lambda)
                for i in result.a.indices { result.a[i] *= lambda }
            }
        }
        moduleReports.append(ModuleReport(module: m.module, inputRanks: m.ranks, rank: m.outRank, how: m.how, discardedEnergy: energy))
        log?("\(m.module): LoRA \(m.how.rawValue), ranks \(m.ranks.map(String.init).joined(separator: "+")) → \(m.outRank)"
             + (energy.map { String(format: ", discarded energy %.3g%%", $0 * 100) } ?? ""))
        return result
    }
}
