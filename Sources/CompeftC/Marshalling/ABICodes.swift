import CCompeft
import TaskVector

/// The `compeft_dtype`, `compeft_role` and `compeft_init` codes of the header.
enum ABICodes {
    /// Every dtype with its code; codes are part of the ABI and never change.
    static let dtypes: [(DType, Int)] = [
        (.f32, COMPEFT_DTYPE_F32), (.f16, COMPEFT_DTYPE_F16), (.bf16, COMPEFT_DTYPE_BF16), (.f64, COMPEFT_DTYPE_F64),
        (.i64, COMPEFT_DTYPE_I64), (.i32, COMPEFT_DTYPE_I32), (.i16, COMPEFT_DTYPE_I16), (.i8, COMPEFT_DTYPE_I8),
        (.u64, COMPEFT_DTYPE_U64), (.u32, COMPEFT_DTYPE_U32), (.u16, COMPEFT_DTYPE_U16), (.u8, COMPEFT_DTYPE_U8),
        (.bool, COMPEFT_DTYPE_BOOL), (.f8e5m2, COMPEFT_DTYPE_F8_E5M2), (.f8e4m3, COMPEFT_DTYPE_F8_E4M3),
    ]

    static func code(of dtype: DType) -> compeft_dtype {
        compeft_dtype(dtypes.first { $0.0 == dtype }!.1)
    }

    static func dtype(code: compeft_dtype) -> DType? {
        dtypes.first { $0.1 == Int(code) }?.0
    }

    static func code(of role: TensorRole) -> compeft_role {
        switch role {
        case .residual: compeft_role(COMPEFT_ROLE_RESIDUAL)
        case .exact: compeft_role(COMPEFT_ROLE_EXACT)
        }
    }

    static func code(of rule: InitRule) -> compeft_init {
        switch rule {
        case .zero: compeft_init(COMPEFT_INIT_ZERO)
        case .one: compeft_init(COMPEFT_INIT_ONE)
        case .base: compeft_init(COMPEFT_INIT_BASE)
        }
    }
}
