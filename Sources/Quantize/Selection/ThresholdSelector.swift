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
        /// Σ |τ| over kept values, in double (only when requested).
        public var keptAbsoluteSum: Double

        /// The threshold magnitude t.
        public var threshold: Float { Float(bitPattern: thresholdBits) }
        /// Kept values that are not zero: the ones a ternary code stores.
        public var keptNonzero: Int { keptCount - keptZeros }
    }

    public enum Phase { case coarse, fine, done }

    private let coarse: UnsafeMutableBufferPointer<UInt64>
    private let fine: UnsafeMutableBufferPointer<UInt64>
    private let fineSums: UnsafeMutableBufferPointer<Double>
    private var aboveCount = 0
    private var aboveSum = 0.0
    private let rank: Int
    private let wantAbsoluteSum: Bool
    public private(set) var total = 0
    public private(set) var phase: Phase = .coarse
    private var bucket: UInt32 = 0
    private var rankInBucket = 0

    /// - Parameters:
    ///   - rank: m, the 1-based rank of the threshold among ascending magnitudes (0 keeps all).
    ///   - wantAbsoluteSum: also compute Σ|τ| over kept values (for the STC scale).
    public init(rank: Int, wantAbsoluteSum: Bool = false) {
        precondition(rank >= 0)
        self.rank = rank
        self.wantAbsoluteSum = wantAbsoluteSum
        coarse = .allocate(capacity: 1 << 16)
        coarse.initialize(repeating: 0)
        fine = .allocate(capacity: 1 << 16)
        fine.initialize(repeating: 0)
        fineSums = .allocate(capacity: wantAbsoluteSum ? 1 << 16 : 0)
        fineSums.initialize(repeating: 0)
    }

    deinit {
        coarse.deallocate()
        fine.deallocate()
        fineSums.deallocate()
    }

    /// Pass 1: counts a chunk. Returns `false` (and counts nothing) when the chunk holds NaN or ±Inf.
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
        guard maxBits < 0x7F80_0000 else {
            // Undo this chunk's counts so the selector stays consistent (the caller reports the error).
            for v in values { counts[Int((v.bitPattern & 0x7FFF_FFFF) &>> 16)] &-= 1 }
            return false
        }
        total += values.count
        return true
    }

    /// Pass 1 fused with the moments: counts a chunk and adds it to `moments` in one read, with the
    /// same arithmetic as ``MomentAccumulator/add(_:)``. Returns `false` (and counts and adds nothing)
    /// when the chunk holds NaN or ±Inf.
    public mutating func addCoarse(_ values: UnsafeBufferPointer<Float>, moments: inout MomentAccumulator) -> Bool {
        precondition(phase == .coarse)
        let n = values.count
        guard n > 0, let base = values.baseAddress else { return true }
        let counts = coarse
        let raw = UnsafeRawPointer(base)
        let c = Double(base[0])
        let shift = SIMD4<Double>(repeating: c)
        var s = SIMD4<Double>.zero
        var q = SIMD4<Double>.zero
        var nonFinite = SIMD8<UInt32>.zero
        let magnitudeMask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        var i = 0
        // Eight values a step: the histogram increments, the running maximum of the magnitudes (the
        // finiteness check), and two 4-lane steps of the shifted sums, in the order `add` uses.
        while n &- i >= 8 {
            let bits = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<UInt32>.self)
            let magnitude = bits & magnitudeMask
            // A magnitude ≥ 0x7F80_0000 (NaN, ±Inf) carries into bit 31; integer add and or vectorize.
            nonFinite |= magnitude &+ SIMD8<UInt32>(repeating: 0x0080_0000)
            let high = magnitude &>> 16
            for lane in 0..<8 { counts[Int(high[lane])] &+= 1 }
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
            let d = Double(base[i]) - c
            sum += d
            shiftedSquares += d * d
            i &+= 1
        }
        guard maxBits < 0x7F80_0000 else {
            for v in values { counts[Int((v.bitPattern & 0x7FFF_FFFF) &>> 16)] &-= 1 }
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
            if !wantAbsoluteSum {
                var above = 0
                for i in (Int(bucket) + 1)..<(1 << 16) { above += Int(coarse[i]) }
                aboveCount = above
            }
        }
        if rank == 0 {
            // Keep everything: threshold 0 and every value qualifies; pass 2 only counts zeros/sums.
            bucket = 0
            rankInBucket = 0
            return true
        }
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
        return true
    }

    /// Adds the pass-1 counts of a selector that saw other values (another thread's share).
    ///
    /// - Precondition: both are in pass 1 with the same rank.
    public mutating func absorbCoarse(_ other: borrowing ThresholdSelector) {
        precondition(phase == .coarse && other.phase == .coarse && rank == other.rank)
        for i in 0..<(1 << 16) { coarse[i] &+= other.coarse[i] }
        total += other.total
    }

    /// An empty selector in pass 2 with this one's bucket, for another thread's share of pass 2.
    /// Absolute sums are not tracked by workers.
    public func fineWorker() -> ThresholdSelector {
        precondition(phase == .fine)
        var w = ThresholdSelector(rank: rank, wantAbsoluteSum: false)
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
        if wantAbsoluteSum {
            let sums = fineSums
            var above = 0
            var aboveAbs = 0.0
            for v in values {
                let bits = v.bitPattern & 0x7FFF_FFFF
                let hi = bits &>> 16
                if hi > b {
                    above &+= 1
                    aboveAbs += Double(Float(bitPattern: bits))
                } else if hi == b {
                    let lo = Int(bits & 0xFFFF)
                    counts[lo] &+= 1
                    sums[lo] += Double(Float(bitPattern: bits))
                }
            }
            aboveCount += above
            aboveSum += aboveAbs
        } else {
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
        var sum = aboveSum
        for i in lo..<(1 << 16) {
            kept += Int(fine[i])
            if wantAbsoluteSum { sum += fineSums[i] }
        }
        // Zeros have bit pattern 0: bucket 0, slot 0; they are kept only when t == 0.
        let keptZeros = thresholdBits == 0 && bucket == 0 ? Int(fine[0]) : 0
        return Result(total: total, rank: rank, thresholdBits: thresholdBits, keptCount: kept,
                      keptZeros: keptZeros, keptAbsoluteSum: sum)
    }
}
