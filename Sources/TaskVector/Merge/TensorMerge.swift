/// Per-tensor merge kernels over k experts' residuals, with PEFT's `merge_utils` semantics.
///
/// Each function merges one tensor: the caller streams tensors, and for `--scope global` passes the
/// per-expert thresholds it found over whole experts (see ``MagnitudeThreshold``). The arithmetic
/// is `Float`, in PEFT's order: sparsify, `τ̃ᵢ × wᵢ`, then a left-to-right sum over experts, so
/// results agree with PEFT's float32 tensors to the last bit wherever torch sums in that order.
/// `lambda` (default 1) scales the merged residual last; at 1 it is not applied.
///
/// Non-finite inputs are outside the contract: they propagate, but not necessarily where PEFT's
/// would. Check the residuals first.
public enum TensorMerge {
    /// Elements processed per block; the scratch is `(k + 2) × blockSize` floats.
    static let blockSize = 4096

    /// Merges one tensor with `method`: the entry point for a caller that streams tensors.
    ///
    /// - Parameters:
    ///   - experts: the k experts' residuals for this tensor, all of one length.
    ///   - weights: wᵢ, one per expert (PEFT builds them as a float32 tensor).
    ///   - method: the merge method and its density.
    ///   - lambda: scale of the merged residual.
    ///   - thresholds: global-scope magnitude thresholds, one per expert; `nil` for per-tensor.
    ///   - masks: explicit DARE masks, one per expert; `nil` draws them from `seed` and `tensor`.
    ///   - seed: DARE's seed.
    ///   - tensor: the tensor's name, which selects DARE's random stream.
    ///   - destination: the merged residual, same length as each expert.
    /// - Complexity: O(k·n); memory O(k) blocks of ``blockSize`` plus DARE's masks (n bits each).
    public static func merge(_ experts: [UnsafeBufferPointer<Float>], weights: [Float], method: MergeMethod,
                             lambda: Float = 1, thresholds: [MagnitudeThreshold]? = nil, masks: [DropMask]? = nil,
                             seed: UInt64 = 0, tensor: String = "", into destination: UnsafeMutableBufferPointer<Float>) {
        let sparsifiers = method.sparsifiers(for: experts, thresholds: thresholds, masks: masks, seed: seed, tensor: tensor)
        combine(experts, weights: weights, sparsifiers: sparsifiers, combination: method.combination,
                lambda: lambda, into: destination)
    }

    /// ``merge(_:weights:method:lambda:thresholds:masks:seed:tensor:into:)`` on arrays.
    public static func merge(_ experts: [[Float]], weights: [Float], method: MergeMethod, lambda: Float = 1,
                             thresholds: [MagnitudeThreshold]? = nil, masks: [DropMask]? = nil,
                             seed: UInt64 = 0, tensor: String = "") -> [Float] {
        let n = experts.first?.count ?? 0
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            out.initialize(repeating: 0)
            withBuffers(experts) { buffers in
                merge(buffers, weights: weights, method: method, lambda: lambda, thresholds: thresholds,
                      masks: masks, seed: seed, tensor: tensor, into: out)
            }
            initialized = n
        }
    }

    /// The kernel under every method: sparsify each expert, then combine.
    ///
    /// - Precondition: at least one expert; one weight and one sparsifier per expert; every expert,
    ///   mask and the destination of one length.
    public static func combine(_ experts: [UnsafeBufferPointer<Float>], weights: [Float], sparsifiers: [Sparsifier],
                               combination: Combination, lambda: Float = 1,
                               into destination: UnsafeMutableBufferPointer<Float>) {
        let k = experts.count
        let n = destination.count
        precondition(k > 0, "merging needs at least one expert")
        precondition(weights.count == k, "\(weights.count) weights for \(k) experts")
        precondition(sparsifiers.count == k, "\(sparsifiers.count) sparsifiers for \(k) experts")
        for (e, x) in experts.enumerated() {
            precondition(x.count == n, "expert \(e) has \(x.count) values, the destination \(n)")
            if case .drop(let mask, let density) = sparsifiers[e] {
                precondition(mask.count == n, "expert \(e)'s mask has \(mask.count) bits for \(n) values")
                precondition(density != .full, "DARE at density 100% is no drop; use Sparsifier.keepAll")
            }
        }
        let block = min(blockSize, max(n, 1))
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: (k + 2) * block)
        defer { scratch.deallocate() }
        scratch.initialize(repeating: 0)
        var tiesSeen = [Int](repeating: 0, count: k)
        var start = 0
        while start < n {
            let length = min(block, n - start)
            var rows: [UnsafeMutableBufferPointer<Float>] = []
            rows.reserveCapacity(k)
            for e in 0..<k {
                let row = UnsafeMutableBufferPointer(rebasing: scratch[(e * block)..<(e * block + length)])
                let source = UnsafeBufferPointer(rebasing: experts[e][start..<(start + length)])
                switch sparsifiers[e] {
                case .keepAll:
                    _ = row.initialize(fromContentsOf: source)
                case .magnitude(let threshold):
                    threshold.apply(source, into: row, tiesSeen: &tiesSeen[e])
                case .drop(let mask, let density):
                    mask.apply(source, offset: start, density: Float(density.fraction), into: row)
                }
                rows.append(row)
            }
            let out = UnsafeMutableBufferPointer(rebasing: destination[start..<(start + length)])
            switch combination {
            case .sum:
                sum(rows, weights: weights, into: out)
            case .disjointMean(let election):
                let elected = UnsafeMutableBufferPointer(rebasing: scratch[(k * block)..<(k * block + length)])
                let agreeing = UnsafeMutableBufferPointer(rebasing: scratch[((k + 1) * block)..<((k + 1) * block + length)])
                disjointMean(rows, weights: weights, election: election, elected: elected, agreeing: agreeing, into: out)
            }
            if lambda != 1 {
                for i in out.indices { out[i] *= lambda }
            }
            start += length
        }
    }

    /// Σₑ rowsₑ × wₑ, left to right.
    static func sum(_ rows: [UnsafeMutableBufferPointer<Float>], weights: [Float],
                    into out: UnsafeMutableBufferPointer<Float>) {
        out.update(repeating: 0)
        for (e, row) in rows.enumerated() {
            let w = weights[e]
            for i in out.indices { out[i] += row[i] * w }
        }
    }

    /// TIES's election and disjoint mean over sparsified rows (PEFT's `calculate_majority_sign_mask`
    /// then `disjoint_merge`).
    ///
    /// - Parameters:
    ///   - elected: scratch for the election sums.
    ///   - agreeing: scratch for the agreeing counts.
    static func disjointMean(_ rows: [UnsafeMutableBufferPointer<Float>], weights: [Float], election: SignElection,
                             elected: UnsafeMutableBufferPointer<Float>, agreeing: UnsafeMutableBufferPointer<Float>,
                             into out: UnsafeMutableBufferPointer<Float>) {
        elected.update(repeating: 0)
        switch election {
        case .total:
            for row in rows {
                for i in elected.indices { elected[i] += row[i] }
            }
        case .frequency:
            for row in rows {
                for i in elected.indices {
                    let v = row[i]
                    elected[i] += v > 0 ? 1 : (v < 0 ? -1 : 0)
                }
            }
        }
        out.update(repeating: 0)
        agreeing.update(repeating: 0)
        for (e, row) in rows.enumerated() {
            let w = weights[e]
            for i in out.indices {
                let v = row[i]
                // `sum >= 0` elects +; a NaN sum elects −. sign(0) is 0, which matches neither.
                let positive = elected[i] >= 0
                let agrees = positive ? v > 0 : v < 0
                if agrees {
                    out[i] += v * w
                    agreeing[i] += 1
                }
            }
        }
        for i in out.indices { out[i] /= max(agreeing[i], 1) }
    }

    /// Calls `body` with unsafe views of every array in `arrays`.
    package static func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        withViews(arrays, body)
    }

    /// Calls `body` with unsafe views of every array in `arrays`.
    package static func withBytes<R>(_ arrays: [[UInt8]], _ body: ([UnsafeBufferPointer<UInt8>]) -> R) -> R {
        withViews(arrays, body)
    }

    static func withViews<Element, R>(_ arrays: [[Element]], _ body: ([UnsafeBufferPointer<Element>]) -> R) -> R {
        var buffers: [UnsafeBufferPointer<Element>] = []
        buffers.reserveCapacity(arrays.count)
        func nest(_ index: Int) -> R {
            if index == arrays.count { return body(buffers) }
            return arrays[index].withUnsafeBufferPointer { buffer in
                buffers.append(buffer)
                return nest(index + 1)
            }
        }
        return nest(0)
    }
}
