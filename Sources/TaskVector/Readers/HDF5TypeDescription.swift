/// The bit layout of an HDF5 floating-point type (`H5Tget_fields` and `H5Tget_ebias`).
struct HDF5FloatLayout: Equatable, Sendable {
    var signBit: Int
    var exponentBit: Int
    var exponentBits: Int
    var mantissaBit: Int
    var mantissaBits: Int
    var exponentBias: Int

    static let ieeeHalf = HDF5FloatLayout(
        signBit: 15, exponentBit: 10, exponentBits: 5, mantissaBit: 0, mantissaBits: 10, exponentBias: 15)
    static let ieeeSingle = HDF5FloatLayout(
        signBit: 31, exponentBit: 23, exponentBits: 8, mantissaBit: 0, mantissaBits: 23, exponentBias: 127)
    static let ieeeDouble = HDF5FloatLayout(
        signBit: 63, exponentBit: 52, exponentBits: 11, mantissaBit: 0, mantissaBits: 52, exponentBias: 1023)
    static let bfloat16 = HDF5FloatLayout(
        signBit: 15, exponentBit: 7, exponentBits: 8, mantissaBit: 0, mantissaBits: 7, exponentBias: 127)
}

/// What an HDF5 datatype is, as far as compeft cares: enough to choose a ``DType`` or say why not.
struct HDF5TypeDescription: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        case integer(signed: Bool)
        case float(HDF5FloatLayout)
        /// Any other class, by name ("string", "compound", "enum", "opaque", …).
        case other(String)
    }

    enum ByteOrder: Equatable, Sendable { case little, big, other }

    var kind: Kind
    /// Size in bytes.
    var size: Int
    var order: ByteOrder = .other
    /// Significant bits and their offset (integers and floats only).
    var precision: Int = 0
    var bitOffset: Int = 0

    /// The dtype the dataset is read as, or why it cannot be.
    ///
    /// Integers of 1, 2, 4 and 8 bytes map to `I8`…`U64` (a narrower precision inside those bytes
    /// widens losslessly). Floats map to `F16`, `F32` or `F64` when their bit layout is IEEE 754's,
    /// and to `BF16` for bfloat16's layout; the byte order may be either, as HDF5 converts it while
    /// reading. Every other class, and floats of other layouts, are refused.
    var dtype: Result<DType, Unsupported> {
        switch kind {
        case .integer(let signed):
            let byOrder: [Int: (DType, DType)] = [1: (.i8, .u8), 2: (.i16, .u16), 4: (.i32, .u32), 8: (.i64, .u64)]
            guard let pair = byOrder[size], order != .other else {
                return .failure(Unsupported("\(size)-byte integer"))
            }
            return .success(signed ? pair.0 : pair.1)
        case .float(let layout):
            guard order != .other, bitOffset == 0, precision == size * 8 else {
                return .failure(
                    Unsupported("\(size)-byte float with \(precision) significant bits at offset \(bitOffset)"))
            }
            switch (size, layout) {
            case (2, .ieeeHalf): return .success(.f16)
            case (2, .bfloat16): return .success(.bf16)
            case (4, .ieeeSingle): return .success(.f32)
            case (8, .ieeeDouble): return .success(.f64)
            default:
                return .failure(
                    Unsupported(
                        "\(size)-byte float (sign bit \(layout.signBit), \(layout.exponentBits) exponent bits, "
                            + "\(layout.mantissaBits) mantissa bits, bias \(layout.exponentBias))"))
            }
        case .other(let name):
            return .failure(Unsupported(name))
        }
    }

    /// Why a datatype has no ``DType``: the HDF5 class or layout, in words.
    struct Unsupported: Error, Equatable, Sendable {
        var typeName: String
        init(_ typeName: String) { self.typeName = typeName }
    }
}
