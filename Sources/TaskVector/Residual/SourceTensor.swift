/// One tensor of an input, with the rule that turns it into a residual.
public struct SourceTensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    /// Name of the file (or shard) the tensor came from, relative to the input.
    public var fileName: String
    public var role: TensorRole
    public var initRule: InitRule
    /// The tensor's values.
    public var data: TensorData
    /// The base tensor when `initRule == .base`.
    public var base: TensorData?
    /// Why the input reader chose this tensor's role, when that needs saying (e.g. a tensor that is new
    /// in a full fine-tune and so is stored exactly); reports and the container index show it.
    public var note: String?

    public init(name: String, dtype: DType, shape: [Int], fileName: String, role: TensorRole,
                initRule: InitRule, data: TensorData, base: TensorData? = nil, note: String? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fileName = fileName
        self.role = role
        self.initRule = initRule
        self.data = data
        self.base = base
        self.note = note
    }

    /// Number of elements.
    public var count: Int { data.count }

    /// Loads `destination.count` residual values (value − init, in `Float`) starting at element `start`.
    ///
    /// - Parameter scratch: space for the base values when `initRule == .base` (at least as long as `destination`).
    public func loadResidual(from start: Int, into destination: UnsafeMutableBufferPointer<Float>,
                             scratch: UnsafeMutableBufferPointer<Float>) {
        data.loadFloats(from: start, into: destination)
        switch initRule {
        case .zero:
            break
        case .one:
            for i in destination.indices { destination[i] -= 1 }
        case .base:
            let n = destination.count
            let b = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
            base!.loadFloats(from: start, into: b)
            for i in 0..<n { destination[i] -= b[i] }
        }
    }

    /// Lets the kernel drop the mapped pages behind an element range of this tensor (and its base).
    public func releasePages(elements: Range<Int>) {
        data.releasePages(elements: elements)
        base?.releasePages(elements: elements)
    }

    /// The init value for element range, written as `Float` (0, 1, or the base's values).
    public func loadInit(from start: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        switch initRule {
        case .zero: destination.update(repeating: 0)
        case .one: destination.update(repeating: 1)
        case .base: base!.loadFloats(from: start, into: destination)
        }
    }
}
