/// The scalar ``ModuleProduct`` kernels that the lane versions replaced, kept as the plain reference they
/// must match bit for bit (the same sums in the same order, one element at a time).
enum ScalarModuleProduct {
    static func measure(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int,
                        thresholdA: UInt32, thresholdB: UInt32) -> (p: Int64, inner: Double, keptA: Int, nonzeroA: Int, keptB: Int, nonzeroB: Int)? {
        precondition(r > 0 && a.count % r == 0 && b.count % r == 0, "factors of \(a.count) and \(b.count) values for rank \(r)")
        var gramB = [Int64](repeating: 0, count: r * r)
        var crossB = [Double](repeating: 0, count: r * r)
        var gramA = [Int64](repeating: 0, count: r * r)
        var crossA = [Double](repeating: 0, count: r * r)
        var keptA = 0, nonzeroA = 0, keptB = 0, nonzeroB = 0
        // B: its rows are the vectors.
        ScalarRowAccumulator.run(rows: b.count / r, rank: r, threshold: thresholdB, gram: &gramB, cross: &crossB,
                                 kept: &keptB, nonzero: &nonzeroB) { row, x in
            for k in 0..<r { x[k] = b[row &* r &+ k] }
        }
        // A: its columns, gathered a tile at a time so that each of the r rows is read in runs.
        let n = a.count / r
        let tile = 64
        var scratch = [Float](repeating: 0, count: tile * r)
        var tileStart = -1
        ScalarRowAccumulator.run(rows: n, rank: r, threshold: thresholdA, gram: &gramA, cross: &crossA,
                                 kept: &keptA, nonzero: &nonzeroA) { column, x in
            let start = column - column % tile
            if start != tileStart {
                tileStart = start
                let width = min(tile, n - start)
                for i in 0..<r {
                    for c in 0..<width { scratch[c &* r &+ i] = a[i &* n &+ start &+ c] }
                }
            }
            let at = (column - start) &* r
            for k in 0..<r { x[k] = scratch[at &+ k] }
        }
        var p: Int64 = 0
        var inner = 0.0
        for i in 0..<(r * r) {
            let (product, o1) = gramB[i].multipliedReportingOverflow(by: gramA[i])
            let (sum, o2) = p.addingReportingOverflow(product)
            if o1 || o2 { return nil }
            p = sum
            inner += crossB[i] * crossA[i]
        }
        return (p, inner, keptA, nonzeroA, keptB, nonzeroB)
    }

    static func normSquared(a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int) -> Double {
        precondition(r > 0 && a.count % r == 0 && b.count % r == 0, "factors of \(a.count) and \(b.count) values for rank \(r)")
        let n = a.count / r
        var gramB = [Double](repeating: 0, count: r * r)
        for row in 0..<(b.count / r) {
            for i in 0..<r {
                let x = Double(b[row &* r &+ i])
                if x == 0 { continue }
                for j in 0..<r { gramB[i &* r &+ j] += x * Double(b[row &* r &+ j]) }
            }
        }
        var total = 0.0
        for i in 0..<r {
            for j in 0..<r {
                var dot = 0.0
                for c in 0..<n { dot += Double(a[i &* n &+ c]) * Double(a[j &* n &+ c]) }
                total += gramB[i &* r &+ j] * dot
            }
        }
        return total
    }
}

enum ScalarRowAccumulator {
    static func run(rows: Int, rank r: Int, threshold: UInt32, gram: inout [Int64], cross: inout [Double],
                    kept: inout Int, nonzero: inout Int, load: (Int, inout [Float]) -> Void) {
        var x = [Float](repeating: 0, count: r)
        var index = [Int](repeating: 0, count: r)
        var sign = [Int64](repeating: 0, count: r)
        for row in 0..<rows {
            load(row, &x)
            var n = 0
            for k in 0..<r {
                let bits = x[k].bitPattern
                let magnitude = bits & 0x7FFF_FFFF
                guard magnitude >= threshold else { continue }
                kept &+= 1
                guard magnitude != 0 else { continue }
                index[n] = k
                sign[n] = bits >> 31 == 0 ? 1 : -1
                n &+= 1
            }
            nonzero &+= n
            for p in 0..<n {
                let j = index[p]
                let sj = sign[p]
                for q in 0..<n { gram[j &* r &+ index[q]] &+= sj * sign[q] }
                let s = Double(sj)
                for k in 0..<r { cross[k &* r &+ j] += Double(x[k]) * s }
            }
        }
    }
}
