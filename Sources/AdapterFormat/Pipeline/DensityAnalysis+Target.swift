public import Quantize
public import TaskVector

extension DensityAnalysis {
    /// The smallest density whose compression meets a target error (`analyze --target-error E`).
    ///
    /// The error is what the model sees: for a LoRA adapter, the relative error of all modules'
    /// updates ΔW = s·B·A together (``LoRAUpdateError/total``); otherwise the relative error of the
    /// task vector the container decodes to. Densities are searched on the grid 0.1 %, 0.2 %, …, 0.9 %,
    /// 1 %, 2 %, …, 100 % by bisection, each step one real compression, assuming the error falls as the
    /// density rises; the densities already measured seed the search.
    public struct TargetSearch: Sendable {
        /// Which error the target is held to.
        public enum Measure: String, Sendable {
            /// The LoRA modules' updates ΔW, together.
            case loraUpdate = "lora-update"
            /// The task vector τ.
            case taskVector = "task-vector"
        }

        /// The target, a relative error.
        public var target: Double
        public var measure: Measure
        /// The smallest grid density that meets the target, and its error; `nil` when even 100 % does not.
        public var found: (density: TaskVector.Density, error: Double)?
        /// The grid density just below ``found`` (or the largest tried, when nothing met the target), and
        /// its error, which misses the target.
        public var below: (density: TaskVector.Density, error: Double?)?
        /// Compressions the search ran beyond the measured densities.
        public var extraCompressions: Int
    }

    /// The densities the search picks from, in percent.
    static let targetGrid: [Double] = (1...9).map { Double($0) / 10 } + (1...100).map(Double.init)

    /// The error `target` is held to at the measured density `d`.
    static func error(_ d: Density, measure: TargetSearch.Measure) -> Double? {
        measure == .loraUpdate ? d.lora?.total.relativeError : d.point.total.chosen.relativeError
    }

    /// Finds the smallest grid density whose error is at most `target`.
    ///
    /// - Parameters:
    ///   - taskVector: the input this analysis measured.
    ///   - target: the relative error to meet (> 0).
    ///   - zstdLevel: the level `compress` would use.
    /// - Throws: what compressing throws.
    public func search(_ taskVector: TaskVectorInput, target: Double, zstdLevel: Int32 = 19) throws -> TargetSearch {
        let measure: TargetSearch.Measure = densities.contains { $0.lora != nil } ? .loraUpdate : .taskVector
        let grid = Self.targetGrid
        var known: [Int: Double?] = [:]
        for d in densities {
            if let i = grid.firstIndex(where: { abs($0 - d.point.density.percent) < 1e-9 }) { known[i] = Self.error(d, measure: measure) }
        }
        var extra = 0
        func error(at i: Int) throws -> Double? {
            if let e = known[i] { return e }
            let density = TaskVector.Density.percent(grid[i])
            let (plan, _, lora) = try Self.compress(taskVector, input: input, options: rule.options, density: density, zstdLevel: zstdLevel)
            let e = measure == .loraUpdate ? lora?.total.relativeError
                : DensitySweep.measure(taskVector.tensors, plans: [plan])[0].total.chosen.relativeError
            known[i] = e
            extra += 1
            return e
        }
        func meets(_ e: Double?) -> Bool { e.map { $0 <= target } ?? false }
        // The bracket: lo misses the target (-1: below the grid), hi meets it.
        var lo = known.filter { !meets($0.value) }.keys.max() ?? -1
        var hi = known.filter { meets($0.value) && $0.key > lo }.keys.min() ?? grid.count - 1
        if !meets(try error(at: hi)) {
            lo = hi
            hi = grid.count
        }
        while hi < grid.count && hi - lo > 1 {
            let mid = (lo + hi) / 2
            if meets(try error(at: mid)) { hi = mid } else { lo = mid }
        }
        let found = hi < grid.count ? (TaskVector.Density.percent(grid[hi]), try error(at: hi)!) : nil
        let below = lo >= 0 ? (TaskVector.Density.percent(grid[lo]), known[lo] ?? nil) : nil
        return TargetSearch(target: target, measure: measure, found: found, below: below, extraCompressions: extra)
    }
}
