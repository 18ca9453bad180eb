import Quantize
public import TaskVector

/// The serving path: decode one tensor into memory the caller owns, or add it into base weights in
/// place. Only the tensor's own payload is read; the reader can be shared by many threads.
extension ContainerReader {
    /// Element types a tensor can be decoded into.
    public static let decodableTypes: Set<DType> = [.f32, .f16, .bf16]

    /// Decodes a tensor's values into `destination` as `dtype` (f32, f16 or bf16, little-endian).
    ///
    /// Residual tensors decode to init + residual (init 0 or 1; for a full fine-tune pass the base
    /// tensor, or `residualOnly: true` to get τ alone). Exact tensors decode to their stored values.
    ///
    /// - Parameters:
    ///   - base: the base model's tensor, for `initRule == .base`.
    ///   - residualOnly: write τ instead of init + τ.
    /// - Throws: ``FormatError`` for a corrupt payload, a non-float tensor, an unsupported `dtype`, a
    ///   destination of the wrong size, or a missing base.
    public func decode(_ t: ContainerIndex.Tensor, as dtype: DType, into destination: UnsafeMutableRawBufferPointer,
                       base: TensorData? = nil, residualOnly: Bool = false) throws {
        guard Self.decodableTypes.contains(dtype) else {
            throw FormatError(.unsupported, file: path, tensor: t.name, "cannot decode into \(dtype.rawValue); use F32, F16 or BF16")
        }
        guard t.dtype.isFloatingPoint else {
            throw FormatError(.unsupported, file: path, tensor: t.name, "\(t.dtype.rawValue) tensor holds no floating-point values")
        }
        guard destination.count == t.count * dtype.byteSize else {
            throw FormatError(.unsupported, file: path, tensor: t.name,
                              "buffer holds \(destination.count) bytes, the tensor needs \(t.count * dtype.byteSize)")
        }
        let needsBase = t.role == .residual && t.initRule == .base && !residualOnly
        if needsBase {
            guard let base else {
                throw FormatError(.unsupported, file: path, tensor: t.name, "a full fine-tune tensor needs its base tensor (or residualOnly)")
            }
            guard base.count == t.count, base.dtype.isFloatingPoint else {
                throw FormatError(.unsupported, file: path, tensor: t.name, "base tensor has \(base.count) \(base.dtype.rawValue) values, expected \(t.count) floats")
            }
        }
        if try decodableEncoding(t) == .ternaryGap && (residualOnly || t.initRule == .zero) {
            // The serving fast path: the gap coder writes ±scale and zeros straight into the caller's buffer.
            let stored = try stored(offset: t.offset, length: t.length, xxh64: t.xxh64, tensor: t.name)
            let type: GapCoder.OutputType = dtype == .f32 ? .f32 : dtype == .f16 ? .f16 : .bf16
            do {
                try stored.withUnsafeBytes {
                    try GapCoder.decode($0, count: t.count, nonzero: t.nonzero, scale: Float(bitPattern: t.scaleBits),
                                        into: destination, as: type)
                }
            } catch {
                throw FormatError(.malformed, file: path, tensor: t.name, "payload does not decode: \(error)")
            }
            return
        }
        if try decodableEncoding(t) == .ternaryBitmap && (residualOnly || t.initRule == .zero) {
            // The same for a zstd-framed mask and signs: 0 + (±scale), rounded once, eight values at a time.
            let raw = try decompressed(offset: t.offset, length: t.length, rawLength: t.rawLength, xxh64: t.xxh64, tensor: t.name)
            try raw.withUnsafeBytes { raw in
                switch PayloadEncoding.bitmap(raw, count: t.count, nonzero: t.nonzero) {
                case .success(let parts):
                    let scale = Float(bitPattern: t.scaleBits)
                    let type: GapCoder.OutputType = dtype == .f32 ? .f32 : dtype == .f16 ? .f16 : .bf16
                    TernaryExpansion.write(mask: parts.mask, signs: parts.signs, count: t.count, positive: 0 + scale,
                                           negative: 0 + -scale, into: destination, as: type)
                case .failure(let problem):
                    throw FormatError(.malformed, file: path, tensor: t.name, problem.message)
                }
            }
            return
        }
        let decoded = try payload(t)
        if case .code(let code) = decoded, residualOnly || t.initRule != .base || base!.dtype == dtype {
            // Fast path: write the init straight into the output type, then touch only kept positions
            // (one rounding per kept value, as the general path).
            let scale = Float(bitPattern: t.scaleBits)
            switch residualOnly ? .zero : t.initRule {
            case .zero: destination.initializeMemory(as: UInt8.self, repeating: 0)
            case .one: Self.fill(destination, with: 1, as: dtype)
            case .base: destination.copyMemory(from: base!.bytes)
            }
            code.forEachKept { i, v in Self.add(code.values.isEmpty ? v * scale : v, at: i, in: destination, as: dtype) }
            return
        }
        // General path (exact payloads, or a base in another dtype): compute in Float, round once.
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.count)
        defer { values.deallocate() }
        switch decoded {
        case .exact(let raw):
            raw.withUnsafeBytes { TensorData(dtype: t.dtype, bytes: $0, owner: nil).loadFloats(from: 0, into: values) }
        case .code(let code):
            base!.loadFloats(from: 0, into: values)
            code.accumulate(scale: Float(bitPattern: t.scaleBits), into: values)
        }
        FloatEncoding.store(UnsafeBufferPointer(values), as: dtype, into: destination)
    }

    /// Fills a buffer of `dtype` elements with one value.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, with value: Float, as dtype: DType) {
        // Caller buffers may be unaligned: store byte-wise-safe, never through a typed binding.
        switch dtype {
        case .f32:
            for i in 0..<(buffer.count / 4) { buffer.storeBytes(of: value, toByteOffset: i &* 4, as: Float.self) }
        case .f16:
            let bits = FloatConversion.f16(from: value).littleEndian
            for i in 0..<(buffer.count / 2) { buffer.storeBytes(of: bits, toByteOffset: i &* 2, as: UInt16.self) }
        default:
            let bits = FloatConversion.bf16(from: value).littleEndian
            for i in 0..<(buffer.count / 2) { buffer.storeBytes(of: bits, toByteOffset: i &* 2, as: UInt16.self) }
        }
    }

    /// `buffer[i] = dtype(Float(buffer[i]) + delta)`: one rounding.
    @inline(__always)
    static func add(_ delta: Float, at index: Int, in buffer: UnsafeMutableRawBufferPointer, as dtype: DType) {
        switch dtype {
        case .f32:
            let old = buffer.loadUnaligned(fromByteOffset: index * 4, as: Float.self)
            buffer.storeBytes(of: old + delta, toByteOffset: index * 4, as: Float.self)
        case .f16:
            let old = FloatConversion.float(fromF16: UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
            buffer.storeBytes(of: FloatConversion.f16(from: old + delta).littleEndian, toByteOffset: index * 2, as: UInt16.self)
        default:
            let old = FloatConversion.float(fromBF16: UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)))
            buffer.storeBytes(of: FloatConversion.bf16(from: old + delta).littleEndian, toByteOffset: index * 2, as: UInt16.self)
        }
    }

    /// Adds `factor` × the tensor's residual into `weights` (f32, f16 or bf16) in place: the serving
    /// path for full fine-tunes and (IA)³. Ternary tensors touch only their kept positions; no dense
    /// copy of the residual is made.
    ///
    /// Exact tensors are not residuals: applying one replaces `weights` by its stored values (and
    /// `factor` must be 1).
    public func apply(_ t: ContainerIndex.Tensor, to weights: UnsafeMutableRawBufferPointer, as dtype: DType,
                      factor: Float = 1) throws {
        guard Self.decodableTypes.contains(dtype) else {
            throw FormatError(.unsupported, file: path, tensor: t.name, "cannot apply into \(dtype.rawValue); use F32, F16 or BF16")
        }
        guard weights.count == t.count * dtype.byteSize else {
            throw FormatError(.unsupported, file: path, tensor: t.name,
                              "buffer holds \(weights.count) bytes, the tensor needs \(t.count * dtype.byteSize)")
        }
        guard factor.isFinite else {
            throw FormatError(.unsupported, file: path, tensor: t.name, "factor must be finite")
        }
        switch try payload(t) {
        case .exact(let raw):
            guard factor == 1 else {
                throw FormatError(.unsupported, file: path, tensor: t.name, "is stored exactly (not a residual); apply it with factor 1 to replace the weights")
            }
            try raw.withUnsafeBytes { bytes in
                let data = TensorData(dtype: t.dtype, bytes: bytes, owner: nil)
                guard t.dtype.isFloatingPoint else {
                    throw FormatError(.unsupported, file: path, tensor: t.name, "\(t.dtype.rawValue) tensor holds no floating-point values")
                }
                let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.count)
                defer { values.deallocate() }
                data.loadFloats(from: 0, into: values)
                FloatEncoding.store(UnsafeBufferPointer(values), as: dtype, into: weights)
            }
        case .code(let code):
            let step = Float(bitPattern: t.scaleBits) * factor
            code.forEachKept { index, value in
                Self.add(code.values.isEmpty ? value * step : value * factor, at: index, in: weights, as: dtype)
            }
        }
    }
}
