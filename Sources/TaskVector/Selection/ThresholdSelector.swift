/// Exact selection of the ComPEFT magnitude threshold by a two-pass radix histogram over the bit
/// patterns of |τ|, without sorting and without holding the values.
///
/// For finite non-negative floats the IEEE bit pattern orders exactly as the value, so the m-th
/// smallest |τ| is found by histogramming the top 16 bits (pass 1), then the low 16 bits of the one
/// bucket that holds rank m (pass 2). Both passes stream the values chunk by chunk; memory is two
/// 65 536-entry tables whatever the input size. `−0.0` and `+0.0` are the same magnitude.
///
/// The rule it implements is the authors' `kthvalue` rule: with `m = d − int(d·K/100)`, the threshold
/// `t` is the m-th smallest |τ| (1-based) and every value with |τ| ≥ t is kept, so all ties at the
/// threshold survive. `m = 0` keeps everything.
///
/// It is compeft's one top-k selector: compression and `analyze` (through Quantize's `Planner`) run it
/// over a whole selection group, streaming, with a sampled window that usually saves pass 2
/// (Quantize's `ThresholdSelector.window(sampling:rank:releasesPages:)`); a merge runs it over one
/// expert's tensor (``MagnitudeThreshold/topK(of:keeping:)``, where ``Result/atThreshold`` tells how
/// many ties to keep) or over a whole expert (``MagnitudeThreshold/global(count:density:expert:forEachChunk:)``).
public struct ThresholdSelector: ~Copyable {
    /// What the selection found.
    public struct Result: Sendable, Equatable {
        /// Number of values d.
        public var total: Int
        /// Rank m of the threshold (1-based, ascending |τ|); 0 when everything is kept.
        public var rank: Int
        /// Bit pattern of the threshold magnitude t; a value is kept iff its |τ| bit pattern ≥ this.
        public var thresholdBits: UInt32
        /// Values kept (|τ| ≥ t), ties and zeros included.
        public var keptCount: Int
        /// Kept values that are exactly ±0 (they stay zero).
        public var keptZeros: Int
        /// Values whose |τ| equals the threshold (the ties at t, all among the kept ones).
        public var atThreshold: Int

        /// The threshold magnitude t.
        public var threshold: Float { Float(bitPattern: thresholdBits) }
        /// Kept values that are not zero: the ones a ternary code stores.
        public var keptNonzero: Int { keptCount - keptZeros }
    }

    public enum Phase { case coarse, fine, done }

    /// How a selector treats NaN and ±Inf.
    public enum NonFinite: Sendable {
        /// A chunk that holds one is refused (``addCoarse(_:)`` returns `false`): compression's rule.
        case refused
        /// They are ranked by their magnitude bit patterns, NaN above +∞ (as `torch.topk` orders
        /// them): a merge's rule.
        case ordered
    }

    private let coarse: UnsafeMutableBufferPointer<UInt64>
    private let fine: UnsafeMutableBufferPointer<UInt64>
    private var aboveCount = 0
    private let rank: Int
    private let nonFinite: NonFinite
    public private(set) var total = 0
    public private(set) var phase: Phase = .coarse
    private var bucket: UInt32 = 0
    private var rankInBucket = 0
    /// Coarse buckets whose values pass 1 also collects (width 0 when there is no window).
    private let windowStart: UInt32
    private let windowWidth: UInt32
    /// Magnitude bits of the values in the window, in no particular order; `windowHitCount` of them.
    /// Appending is sequential, where counting them in a table would scatter over megabytes.
    private let windowHits: UnsafeMutableBufferPointer<UInt32>
    private var windowHitCount = 0
    /// More values fell in the window than `windowHits` holds: the window is not used.
    private var windowOverflowed = false
    /// Whether pass 2 was skipped because the threshold's bucket lay in the window.
    public private(set) var resolvedInWindow = false

    /// Window values one selector collects at most (16 MiB); beyond that pass 2 runs as usual.
    public static let windowHitCapacity = 1 << 22

    /// Buckets a window spans (the pass-1 filter relies on it being 8).
    public static let maxWindowBuckets = 8

    /// - Parameters:
    ///   - rank: m, the 1-based rank of the threshold among ascending magnitudes (0 keeps all).
    ///   - window: coarse buckets (top 16 bits of |τ|) whose values pass 1 also collects, exactly
    ///     ``maxWindowBuckets`` of them. When the threshold falls in one of them, its low bits are
    ///     counted from what was collected and pass 2 is not needed (``finishCoarse()`` returns
    ///     `false`); otherwise nothing changes. A guess, typically from a sample (Quantize's
    ///     `ThresholdSelector.window(sampling:rank:releasesPages:)`): the result never depends on it.
    ///   - windowCapacity: window values collected at most before the window is given up.
    ///   - nonFinite: whether NaN and ±Inf are refused (the default) or ranked.
    public init(rank: Int, window: Range<UInt32>? = nil, windowCapacity: Int = windowHitCapacity,
                nonFinite: NonFinite = .refused) {
        precondition(rank >= 0)
        precondition(window.map { $0.count == Self.maxWindowBuckets && $0.upperBound <= 1 << 16 } ?? true,
                     "a window spans exactly \(Self.maxWindowBuckets) buckets")
        self.rank = rank
        self.nonFinite = nonFinite
        windowStart = window?.lowerBound ?? 0
        windowWidth = UInt32(window?.count ?? 0)
        // Not initialised: only the first `windowHitCount` entries are ever read, and untouched pages
        // of a large allocation cost no memory.
        windowHits = .allocate(capacity: window == nil ? 0 : max(0, windowCapacity))
        coarse = .allocate(capacity: 1 << 16)
        coarse.initialize(repeating: 0)
        fine = .allocate(capacity: 1 << 16)
        fine.initialize(repeating: 0)
    }

    deinit {
        coarse.deallocate()
        fine.deallocate()
        windowHits.deallocate()
    }

    /// Collects a magnitude whose bucket is in the window.
    @inline(__always)
    private mutating func collectInWindow(_ magnitude: UInt32) {
        guard (magnitude &>> 16) &- windowStart < windowWidth else { return }
        if windowHitCount < windowHits.count {
            windowHits[windowHitCount] = magnitude
            windowHitCount &+= 1
        } else {
            windowOverflowed = true
        }
    }

    /// Pass 1: counts a chunk. Returns `false` (and counts nothing) when the chunk holds NaN or ±Inf
    /// and the selector refuses them.
    public mutating func addCoarse(_ values: UnsafeBufferPointer<Float>) -> Bool {
        precondition(phase == .coarse)
        var maxBits: UInt32 = 0
        let counts = coarse
        // The finiteness check is folded into the counting loop: one read of the data.
        for v in values {
            let bits = v.bitPattern & 0x7FFF_FFFF
            maxBits = max(maxBits, bits)
            counts[Int(bits &>> 16)] &+= 1
        }
        guard maxBits < 0x7F80_0000 || nonFinite == .ordered else {
            // Undo this chunk's counts so the selector stays consistent (the caller reports the error).
            for v in values { counts[Int((v.bitPattern & 0x7FFF_FFFF) &>> 16)] &-= 1 }
            return false
        }
        if windowWidth != 0 {
            for v in values { collectInWindow(v.bitPattern & 0x7FFF_FFFF) }
        }
        total += values.count
        return true
    }

    /// Pass 1 fused with the moments: counts a chunk and adds it to `moments` in one read, with the
    /// same arithmetic as ``MomentAccumulator/add(_:)``. Returns `false` (and counts and adds nothing)
    /// when the chunk holds NaN or ±Inf and the selector refuses them.
    public mutating func addCoarse(_ values: UnsafeBufferPointer<Float>, moments: inout MomentAccumulator) -> Bool {
        precondition(phase == .coarse)
        let n = values.count
        guard n > 0, let base = values.baseAddress else { return true }
        let counts = coarse
        let raw = UnsafeRawPointer(base)
        let hitsBefore = windowHitCount
        let c = Double(base[0])
        let shift = SIMD4<Double>(repeating: c)
        var s = SIMD4<Double>.zero
        var q = SIMD4<Double>.zero
        var nonFinite = SIMD8<UInt32>.zero
        let magnitudeMask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        // Without a window, a start no bucket reaches in the filter below ((b − start) >> 3 ≥ 2).
        let windowFirst = SIMD8<UInt32>(repeating: windowWidth == 0 ? 0xFFFF_FFF0 : windowStart)
        let words = raw.assumingMemoryBound(to: UInt32.self)
        var i = 0
        // Eight values a step: the histogram increments, the running maximum of the magnitudes (the
        // finiteness check), and two 4-lane steps of the shifted sums, in the order `add` uses.
        while n &- i >= 8 {
            let bits = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<UInt32>.self)
            let magnitude = bits & magnitudeMask
            // A magnitude ≥ 0x7F80_0000 (NaN, ±Inf) carries into bit 31; integer add and or vectorize.
            nonFinite |= magnitude &+ SIMD8<UInt32>(repeating: 0x0080_0000)
            let high = magnitude &>> 16
            // The increments take their indices from memory: extracting 32-bit lanes from a vector
            // register costs more on the baseline target (SSE2) than loading them again.
            for lane in 0..<8 { counts[Int((words[i &+ lane] & 0x7FFF_FFFF) &>> 16)] &+= 1 }
            // Values in the window (a few per cent at most) also count their low bits. The filter is
            // slot < 8 as an equality (unsigned lane compares cost more on the baseline target);
            // `countInWindow` checks the exact width.
            let inWindow = (high &- windowFirst) &>> 3 .== .zero
            if any(inWindow) {
                // The lanes that hit, as bits (one multiplication gathers eight 0/1 bytes), so only
                // they are visited: a per-lane test here would run, and mispredict, on every step.
                let ones = SIMD8<UInt8>(truncatingIfNeeded: SIMD8<UInt32>.zero.replacing(with: 1, where: inWindow))
                var hits = (unsafeBitCast(ones, to: UInt64.self) &* 0x0102_0408_1020_4080) &>> 56
                if windowHitCount &+ 8 <= windowHits.count {
                    while hits != 0 {
                        let lane = hits.trailingZeroBitCount
                        hits &= hits &- 1
                        windowHits[windowHitCount] = words[i &+ lane] & 0x7FFF_FFFF
                        windowHitCount &+= 1
                    }
                } else {
                    windowOverflowed = true
                }
            }
            let v = unsafeBitCast(bits, to: SIMD8<Float>.self)
            let d0 = SIMD4<Double>(v.lowHalf) - shift
            s += d0
            q += d0 * d0
            let d1 = SIMD4<Double>(v.highHalf) - shift
            s += d1
            q += d1 * d1
            i &+= 8
        }
        if n &- i >= 4 {
            let bits = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<UInt32>.self)
            for lane in 0..<4 {
                let magnitude = bits[lane] & 0x7FFF_FFFF
                nonFinite[lane] |= magnitude &+ 0x0080_0000
                counts[Int(magnitude &>> 16)] &+= 1
                collectInWindow(magnitude)
            }
            let d = SIMD4<Double>(unsafeBitCast(bits, to: SIMD4<Float>.self)) - shift
            s += d
            q += d * d
            i &+= 4
        }
        var sum = (s[0] + s[1]) + (s[2] + s[3])
        var shiftedSquares = (q[0] + q[1]) + (q[2] + q[3])
        var maxBits: UInt32 = 0
        for lane in 0..<8 where nonFinite[lane] & 0x8000_0000 != 0 { maxBits = 0x7F80_0000 }
        while i < n {
            let bits = base[i].bitPattern & 0x7FFF_FFFF
            maxBits = max(maxBits, bits)
            counts[Int(bits &>> 16)] &+= 1
            collectInWindow(bits)
            let d = Double(base[i]) - c
            sum += d
            shiftedSquares += d * d
            i &+= 1
        }
        guard maxBits < 0x7F80_0000 || self.nonFinite == .ordered else {
            for v in values { counts[Int((v.bitPattern & 0x7FFF_FFFF) &>> 16)] &-= 1 }
            windowHitCount = hitsBefore
            return false
        }
        total += n
        moments.addChunk(count: n, shift: c, shiftedSum: sum, shiftedSquares: shiftedSquares)
        return true
    }

    /// Ends pass 1. Returns `true` when a second pass is needed (call ``addFine(_:)`` over the same
    /// values in any order, then ``finish()``), `false` when the result is already known.
    public mutating func finishCoarse() -> Bool {
        precondition(phase == .coarse)
        precondition(rank <= total, "rank \(rank) exceeds the \(total) values")
        phase = .fine
        defer {
            // Values above the threshold's bucket are kept whatever its low bits; pass 2 needs only the bucket.
            var above = 0
            for i in (Int(bucket) + 1)..<(1 << 16) { above += Int(coarse[i]) }
            aboveCount = above
        }
        if rank == 0 {
            // Keep everything: threshold 0 and every value qualifies; pass 2 only counts zeros/sums.
            bucket = 0
            rankInBucket = 0
        } else {
            var cumulative = 0
            for b in 0..<(1 << 16) {
                let c = Int(coarse[b])
                if cumulative + c >= rank {
                    bucket = UInt32(b)
                    rankInBucket = rank - cumulative
                    break
                }
                cumulative += c
            }
        }
        // Pass 1 already collected the bucket's values when it lay in the window.
        if !windowOverflowed && bucket &- windowStart < windowWidth {
            for i in 0..<windowHitCount where windowHits[i] &>> 16 == bucket {
                fine[Int(windowHits[i] & 0xFFFF)] &+= 1
            }
            resolvedInWindow = true
            return false
        }
        return true
    }

    /// Adds the pass-1 counts of a selector that saw other values (another thread's share).
    ///
    /// - Precondition: both are in pass 1 with the same rank.
    public mutating func absorbCoarse(_ other: borrowing ThresholdSelector) {
        precondition(phase == .coarse && other.phase == .coarse && rank == other.rank)
        precondition(windowStart == other.windowStart && windowWidth == other.windowWidth)
        for i in 0..<(1 << 16) { coarse[i] &+= other.coarse[i] }
        if other.windowOverflowed || windowHitCount + other.windowHitCount > windowHits.count {
            windowOverflowed = true
        } else if !windowOverflowed {
            for i in 0..<other.windowHitCount { windowHits[windowHitCount &+ i] = other.windowHits[i] }
            windowHitCount += other.windowHitCount
        }
        total += other.total
    }

    /// An empty selector in pass 2 with this one's bucket, for another thread's share of pass 2.
    public func fineWorker() -> ThresholdSelector {
        precondition(phase == .fine)
        var w = ThresholdSelector(rank: rank, nonFinite: nonFinite)
        w.phase = .fine
        w.bucket = bucket
        w.rankInBucket = rankInBucket
        return w
    }

    /// Adds the pass-2 counts of a ``fineWorker()``.
    public mutating func absorbFine(_ other: borrowing ThresholdSelector) {
        precondition(phase == .fine && other.phase == .fine && bucket == other.bucket)
        for i in 0..<(1 << 16) { fine[i] &+= other.fine[i] }
    }

    /// Pass 2 over the same values.
    public mutating func addFine(_ values: UnsafeBufferPointer<Float>) {
        precondition(phase == .fine)
        let b = bucket
        let counts = fine
        // Values above the bucket were already counted by pass 1 (see finishCoarse); only the
        // bucket's low bits are needed here.
        // Sixteen values a step; only steps that hold a value of the bucket (a small share, for
        // a bucket is 1/128 of an octave) are counted one by one.
        let n = values.count
        let raw = UnsafeRawPointer(values.baseAddress)
        let magnitudeMask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
        let bucketLanes = SIMD16<UInt32>(repeating: b)
        var i = 0
        while n &- i >= 16 {
            let bits = raw!.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<UInt32>.self) & magnitudeMask
            if any(bits &>> 16 .== bucketLanes) {
                for lane in 0..<16 where bits[lane] &>> 16 == b { counts[Int(bits[lane] & 0xFFFF)] &+= 1 }
            }
            i &+= 16
        }
        while i < n {
            let bits = values[i].bitPattern & 0x7FFF_FFFF
            if bits &>> 16 == b { counts[Int(bits & 0xFFFF)] &+= 1 }
            i &+= 1
        }
    }

    /// Ends pass 2 and returns the threshold and the kept-set statistics.
    public mutating func finish() -> Result {
        precondition(phase == .fine)
        phase = .done
        var lo = 0
        if rank > 0 {
            var cumulative = 0
            for i in 0..<(1 << 16) {
                cumulative += Int(fine[i])
                if cumulative >= rankInBucket { lo = i; break }
            }
        }
        let thresholdBits = (bucket &<< 16) | UInt32(lo)
        var kept = aboveCount
        for i in lo..<(1 << 16) { kept += Int(fine[i]) }
        // Zeros have bit pattern 0: bucket 0, slot 0; they are kept only when t == 0.
        let keptZeros = thresholdBits == 0 && bucket == 0 ? Int(fine[0]) : 0
        return Result(total: total, rank: rank, thresholdBits: thresholdBits, keptCount: kept,
                      keptZeros: keptZeros, atThreshold: Int(fine[lo]))
    }
}
