/// Where one tensor lives in a safetensors file: name, dtype, shape and its byte range.
public struct TensorInfo: Sendable, Hashable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Byte range inside the file's data section (after the header).
    public var dataRange: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }

    /// Number of elements (1 for a rank-0 tensor).
    public var count: Int { shape.reduce(1, *) }
}

/// Multiplies shape dimensions, returning `nil` on a negative dimension or overflow.
package func checkedElementCount(_ shape: [Int]) -> Int? {
    var total = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: dim)
        guard !overflow else { return nil }
        total = product
    }
    return total
}
