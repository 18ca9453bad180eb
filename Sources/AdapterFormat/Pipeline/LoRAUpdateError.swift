import Foundation
public import Quantize
public import TaskVector

/// How far a compressed LoRA adapter's updates are from the original's: for each module the update
/// the model adds, ΔW = s·B·A (s = `lora_alpha`/r, or /√r with rsLoRA, `alpha_pattern` honoured), of
/// the factors a container decodes to against that of the input's factors.
///
/// The factors' own error (what ``DensitySweep`` measures) says little about ΔW: a product of two
/// perturbed factors can be far from the product of the originals even when each factor is close, and
/// a factor that keeps nothing zeroes the module. The figures here are of ΔW itself, computed from the
/// factors through r×r Gram matrices — ‖B·A‖²_F = tr(BᵀB · AAᵀ), ⟨B̂·Â, B·A⟩ = tr(B̂ᵀB · AÂᵀ) — in
/// `Double`, never forming the out×in update.
///
/// The compressed factors are whatever the container decodes to, in the factor's own dtype (what
/// `decompress` writes and PEFT loads: a bf16 adapter's factors are rounded to bf16), so the figures
/// follow the compressor's rule, whichever it is.
public struct LoRAUpdateError: Sendable {
    /// One module.
    public struct Module: Sendable {
        /// The module's name: the factors' names up to `.lora_A` / `.lora_B`.
        public var module: String
        /// r, the rows of A.
        public var rank: Int
        /// s, the scale the LoRA layer applies to B·A.
        public var scale: Double
        /// Of ΔW: ‖ΔŴ − ΔW‖², ⟨ΔŴ, ΔW⟩, ‖ΔŴ‖², ‖ΔW‖² (no single scale: ``Reconstruction/scale`` is `nil`).
        public var update: Reconstruction
        /// Of the two factors together, [A, B] against [Â, B̂].
        public var factors: Reconstruction
    }

    /// Every LoRA module, in the input's order of their `lora_A` tensors.
    public var modules: [Module]

    /// All modules' updates together: the sums of ``Module/update``, so the error is
    /// √(Σ‖ΔŴ − ΔW‖²) / √(Σ‖ΔW‖²) over the modules.
    public var total: Reconstruction { modules.reduce(.empty) { $0.combined(with: $1.update) } }

    /// All modules' factors together.
    public var factorTotal: Reconstruction { modules.reduce(.empty) { $0.combined(with: $1.factors) } }

    /// The LoRA modules of `tensors`: residual `lora_A` / `lora_B` (or `lora_embedding_A` / `_B`) pairs
    /// whose shapes are r×… and out×r. Tensors of other names, and factors without a partner, are left out.
    public static func modules(of tensors: [SourceTensor]) -> [(module: String, a: SourceTensor, b: SourceTensor)] {
        var byName: [String: SourceTensor] = [:]
        for t in tensors where t.role == .residual { byName[t.name] = t }
        var found: [(String, SourceTensor, SourceTensor)] = []
        for t in tensors where t.role == .residual {
            for (tokenA, tokenB) in [("lora_embedding_A", "lora_embedding_B"), ("lora_A", "lora_B")] {
                guard let r = t.name.range(of: tokenA, options: .backwards) else { continue }
                let suffix = t.name[r.upperBound...]
                guard suffix.isEmpty || suffix == ".weight" else { continue }
                let prefix = String(t.name[..<r.lowerBound])
                guard let b = byName[prefix + tokenB + suffix], t.shape.count >= 2, b.shape.count >= 2,
                      b.shape.dropFirst(2).allSatisfy({ $0 == 1 }), t.shape[0] == b.shape[1], t.shape[0] > 0
                else { break }
                found.append((prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix, t, b))
                break
            }
        }
        return found
    }

    /// Measures every LoRA module of `tensors` against what `reader` (a container compressed from them)
    /// decodes to.
    ///
    /// - Parameters:
    ///   - tensors: the input's tensors.
    ///   - config: the input's `adapter_config.json`, for each module's scale; without one, s = 1.
    ///   - reader: the container.
    /// - Returns: `nil` when the input has no LoRA module.
    /// - Throws: what decoding the container throws; a ``FormatError`` when it lacks a factor.
    public static func measure(_ tensors: [SourceTensor], config: AdapterConfig?, reader: ContainerReader) throws -> LoRAUpdateError? {
        let pairs = modules(of: tensors)
        guard !pairs.isEmpty else { return nil }
        let scales = try config.map { try MergedAdapterConfig(bytes: $0.raw, path: "adapter_config.json") }
        var modules: [Module] = []
        for (module, a, b) in pairs {
            let r = a.shape[0]
            let original = (a: values(of: a), b: values(of: b))
            let decoded = (a: try decoded(a.name, count: a.count, reader: reader), b: try decoded(b.name, count: b.count, reader: reader))
            let s = scales?.scaling(module: MergedAdapterConfig.moduleKey(module), rank: r).scale ?? 1
            let n = a.count / r, m = b.count / r
            // Gram matrices: A·Aᵀ, A·Âᵀ, Â·Âᵀ (r×r from r×n rows); BᵀB, B̂ᵀB, B̂ᵀB̂ (r×r from m×r columns).
            let aa = rowGram(original.a, original.a, r: r, n: n), aah = rowGram(original.a, decoded.a, r: r, n: n)
            let ahah = rowGram(decoded.a, decoded.a, r: r, n: n)
            let bb = columnGram(original.b, original.b, m: m, r: r), bhb = columnGram(decoded.b, original.b, m: m, r: r)
            let bhbh = columnGram(decoded.b, decoded.b, m: m, r: r)
            let s2 = s * s
            let reference = s2 * traceOfProduct(bb, aa, r: r)
            let squaredNorm = s2 * traceOfProduct(bhbh, ahah, r: r)
            let inner = s2 * traceOfProduct(bhb, aah, r: r)
            let update = Reconstruction(scale: nil, squaredError: max(0, squaredNorm - 2 * inner + reference), inner: inner,
                                        squaredNorm: squaredNorm, referenceSquaredNorm: reference)
            let factors = direct(original.a, decoded.a).combined(with: direct(original.b, decoded.b))
            modules.append(Module(module: module, rank: r, scale: s, update: update, factors: factors))
        }
        return LoRAUpdateError(modules: modules)
    }

    static func values(of t: SourceTensor) -> [Float] {
        [Float](unsafeUninitializedCapacity: t.count) { buffer, count in
            t.data.loadFloats(from: 0, into: buffer)
            count = t.count
        }
    }

    static func decoded(_ name: String, count: Int, reader: ContainerReader) throws -> [Float] {
        guard let entry = reader.tensor(named: name), entry.count == count else {
            throw FormatError(.malformed, file: reader.path, tensor: name, "the container lacks this LoRA factor, or holds another shape")
        }
        var values = [Float](repeating: 0, count: count)
        if entry.dtype != .f32 && ContainerReader.decodableTypes.contains(entry.dtype) {
            // What decompress writes, and PEFT loads: the values rounded to the tensor's own dtype.
            var raw = [UInt8](repeating: 0, count: count * entry.dtype.byteSize)
            try raw.withUnsafeMutableBytes { try reader.decode(entry, as: entry.dtype, into: $0) }
            raw.withUnsafeBytes { bytes in
                values.withUnsafeMutableBufferPointer { TensorData(dtype: entry.dtype, bytes: bytes, owner: nil).loadFloats(from: 0, into: $0) }
            }
        } else {
            try values.withUnsafeMutableBufferPointer { try reader.decodeValues(entry, base: nil, into: $0) }
        }
        return values
    }

    /// X·Yᵀ for row-major r×n matrices X and Y.
    static func rowGram(_ x: [Float], _ y: [Float], r: Int, n: Int) -> [Double] {
        var g = [Double](repeating: 0, count: r * r)
        for i in 0..<r {
            for j in 0..<r {
                var sum = 0.0
                for k in 0..<n { sum += Double(x[i * n + k]) * Double(y[j * n + k]) }
                g[i * r + j] = sum
            }
        }
        return g
    }

    /// Xᵀ·Y for row-major m×r matrices X and Y.
    static func columnGram(_ x: [Float], _ y: [Float], m: Int, r: Int) -> [Double] {
        var g = [Double](repeating: 0, count: r * r)
        for k in 0..<m {
            for i in 0..<r {
                let xi = Double(x[k * r + i])
                guard xi != 0 else { continue }
                for j in 0..<r { g[i * r + j] += xi * Double(y[k * r + j]) }
            }
        }
        return g
    }

    /// tr(X·Y) = Σᵢⱼ X[i,j]·Y[j,i] for r×r matrices.
    static func traceOfProduct(_ x: [Double], _ y: [Double], r: Int) -> Double {
        var sum = 0.0
        for i in 0..<r {
            for j in 0..<r { sum += x[i * r + j] * y[j * r + i] }
        }
        return sum
    }

    /// The reconstruction of `reference` by `decoded`, element by element.
    static func direct(_ reference: [Float], _ decoded: [Float]) -> Reconstruction {
        var error = 0.0, inner = 0.0, norm = 0.0, referenceNorm = 0.0
        for i in reference.indices {
            let x = Double(reference[i]), y = Double(decoded[i])
            error += (y - x) * (y - x)
            inner += x * y
            norm += y * y
            referenceNorm += x * x
        }
        return Reconstruction(scale: nil, squaredError: error, inner: inner, squaredNorm: norm, referenceSquaredNorm: referenceNorm)
    }
}
