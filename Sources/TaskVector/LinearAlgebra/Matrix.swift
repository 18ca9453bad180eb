/// A dense row-major matrix of `Double`: the working type of the SVD and the LoRA merges.
///
/// Element (i, j) is `elements[i * cols + j]`, the layout of a contiguous PyTorch tensor of shape
/// `[rows, cols]` (so `lora_A.weight` and `lora_B.weight` convert without transposing).
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var elements: [Double]

    /// A matrix over `elements` in row-major order.
    ///
    /// - Precondition: `elements.count == rows * cols`.
    public init(rows: Int, cols: Int, elements: [Double]) {
        precondition(rows >= 0 && cols >= 0 && elements.count == rows * cols,
                     "\(elements.count) elements for a \(rows)×\(cols) matrix")
        self.rows = rows
        self.cols = cols
        self.elements = elements
    }

    /// A matrix of `Float` values, widened exactly.
    public init(rows: Int, cols: Int, floats: [Float]) {
        self.init(rows: rows, cols: cols, elements: floats.map(Double.init))
    }

    /// The zero matrix.
    public init(zeros rows: Int, _ cols: Int) {
        self.init(rows: rows, cols: cols, elements: [Double](repeating: 0, count: rows * cols))
    }

    /// The n×n identity.
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(zeros: n, n)
        for i in 0..<n { m[i, i] = 1 }
        return m
    }

    public subscript(row: Int, col: Int) -> Double {
        get { elements[row * cols + col] }
        set { elements[row * cols + col] = newValue }
    }

    /// The transpose.
    public var transposed: Matrix {
        var t = Matrix(zeros: cols, rows)
        elements.withUnsafeBufferPointer { a in
            t.elements.withUnsafeMutableBufferPointer { b in
                for i in 0..<rows {
                    for j in 0..<cols { b[j &* rows &+ i] = a[i &* cols &+ j] }
                }
            }
        }
        return t
    }

    /// The product `self × other`, summed in index order.
    ///
    /// Each element is 0 + a₀b₀ + a₁b₁ + … in order of the inner index, one product and one sum at a time;
    /// eight elements of an output row run side by side in SIMD lanes, their sums kept in registers.
    ///
    /// - Precondition: `cols == other.rows`.
    /// - Complexity: O(rows · cols · other.cols).
    public func multiplied(by other: Matrix) -> Matrix {
        precondition(cols == other.rows, "cannot multiply \(rows)×\(cols) by \(other.rows)×\(other.cols)")
        var c = Matrix(zeros: rows, other.cols)
        let n = other.cols
        let k = cols
        guard rows > 0, n > 0, k > 0 else { return c }
        let blocked = n & ~7
        elements.withUnsafeBufferPointer { a in
            other.elements.withUnsafeBufferPointer { b in
                c.elements.withUnsafeMutableBufferPointer { out in
                    let (a, b, out) = (a.baseAddress!, b.baseAddress!, out.baseAddress!)
                    for i in 0..<rows {
                        let aRow = a + i &* k
                        let cRow = out + i &* n
                        var j = 0
                        while j < blocked {
                            var sum = SIMD8<Double>(repeating: 0)
                            var bRow = b + j
                            for p in 0..<k {
                                sum += SIMD8(repeating: aRow[p]) * UnsafeRawPointer(bRow).loadUnaligned(as: SIMD8<Double>.self)
                                bRow += n
                            }
                            UnsafeMutableRawPointer(cRow + j).storeBytes(of: sum, as: SIMD8<Double>.self)
                            j &+= 8
                        }
                        guard blocked < n else { continue }
                        for p in 0..<k {
                            let x = aRow[p]
                            let bRow = b + p &* n
                            for j in blocked..<n { cRow[j] += x * bRow[j] }
                        }
                    }
                }
            }
        }
        return c
    }

    /// The rows `range` as a matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, elements: Array(elements[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// The columns `range` as a matrix.
    public func columns(_ range: Range<Int>) -> Matrix {
        var m = Matrix(zeros: rows, range.count)
        for i in 0..<rows {
            for (k, j) in range.enumerated() { m[i, k] = self[i, j] }
        }
        return m
    }

    /// The Frobenius norm squared, Σ aᵢⱼ², summed in `Double` in index order.
    public var squaredNorm: Double { elements.reduce(0) { $0 + $1 * $1 } }

    /// The elements rounded to `Float`.
    public var floats: [Float] { elements.map(Float.init) }
}
