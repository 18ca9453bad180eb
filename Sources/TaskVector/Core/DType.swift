/// The element type of a tensor, spelled as safetensors spells it.
///
/// Floating-point types (`F64`, `F32`, `F16`, `BF16`) can be read as residuals;
/// every other dtype is carried through byte-for-byte and never converted.
public enum DType: String, Sendable, CaseIterable, Codable, Comparable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Size of one element in bytes.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// Whether compeft reads this dtype as numbers (and so can compute a residual from it).
    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16: true
        default: false
        }
    }

    /// The order the safetensors reference writer uses to lay out tensors (its `Dtype` enum order).
    var layoutRank: Int { DType.allCases.firstIndex(of: self)! }

    public static func < (lhs: DType, rhs: DType) -> Bool { lhs.layoutRank < rhs.layoutRank }

    /// Parses a user-facing spelling: `f32`, `F32`, `float32`, `bf16`, `bfloat16`, `f16`, `half`, `float16`, `f64`.
    public init?(userSpelling s: String) {
        switch s.lowercased() {
        case "f32", "float32", "float": self = .f32
        case "f16", "float16", "half", "fp16": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "f64", "float64", "double": self = .f64
        default:
            guard let d = DType(rawValue: s.uppercased()) else { return nil }
            self = d
        }
    }
}
