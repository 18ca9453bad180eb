public import TaskVector

/// The LoRA modules of an input rewritten in one or more gauges, as `F32` values held in memory.
///
/// Each module is transformed on its own (in parallel over modules; each result depends only on its
/// module, so the bytes do not depend on the thread count): the factors are read as binary32
/// residuals, checked for NaN and ±Inf, widened to binary64, put in the SVD gauge
/// (``LoRAGaugeTransform/svd(a:b:)``) and, for `svd-dct`, rotated (``LoRAGaugeTransform/dct(_:)``);
/// each gauge's factors are then rounded to binary32 once, straight into the tensor data the plans
/// share. Memory: one binary32 copy of the LoRA factors per gauge, plus binary64 working space for the
/// modules being transformed.
struct GaugedModules {
    /// ‖B·A‖²_F = Σσᵢ² of each module (binary64, from the SVD).
    var normSquared: [Double]
    /// factors[gauge][module]: the rewritten `lora_A` (r × in) and `lora_B` (out × r).
    var factors: [[(a: TensorData, b: TensorData)]]
    var modules: [LoRAModule]

    init(_ tensors: [SourceTensor], modules: [LoRAModule], gauges: [CompressionOptions.LoRAGauge], threads: Int,
         release: Bool) throws {
        precondition(!gauges.contains(.trained) && !gauges.contains(.auto), "gauges to rewrite into: svd, svd-dct")
        self.modules = modules
        let results = UnsafeSlots<Result<(Double, [(a: TensorData, b: TensorData)]), QuantizeError>?>(repeating: nil, count: modules.count)
        parallelFor(count: modules.count, threads: threads) { _, m in
            let module = modules[m]
            results[m] = Result { () throws(QuantizeError) in
                let a = try Planner.finiteResidual(tensors[module.a], release: release)
                let b = try Planner.finiteResidual(tensors[module.b], release: release)
                let svd = LoRAGaugeTransform.svd(
                    a: Matrix(rows: module.rank, cols: module.inFeatures, floats: a),
                    b: Matrix(rows: module.outFeatures, cols: module.rank, floats: b))
                let out = gauges.map { gauge -> (a: TensorData, b: TensorData) in
                    let f = gauge == .svd ? svd : LoRAGaugeTransform.dct(svd)
                    return (Self.rounded(f.a), Self.rounded(f.b))
                }
                return (svd.productNormSquared, out)
            }
        }
        var normSquared: [Double] = []
        var factors = [[(a: TensorData, b: TensorData)]](repeating: [], count: gauges.count)
        for m in modules.indices {
            let (n, out) = try results[m]!.get()
            normSquared.append(n)
            for g in gauges.indices { factors[g].append(out[g]) }
        }
        self.normSquared = normSquared
        self.factors = factors
    }

    /// A matrix's elements rounded to binary32, as `F32` tensor data.
    static func rounded(_ m: Matrix) -> TensorData {
        m.elements.withUnsafeBufferPointer { x in
            TensorData(float32Count: x.count) { out in
                for i in x.indices { out[i] = Float(x[i]) }
            }
        }
    }

    /// `input` with every module's factors replaced by their values in gauge number `g`.
    func tensors(gauge g: Int, of input: [SourceTensor]) -> [SourceTensor] {
        var out = input
        for (m, module) in modules.enumerated() {
            out[module.a] = Planner.replacing(input[module.a], with: factors[g][m].a)
            out[module.b] = Planner.replacing(input[module.b], with: factors[g][m].b)
        }
        return out
    }
}

extension Planner {
    /// A residual tensor whose values are `values` (`F32` in memory, init 0), otherwise `tensor`:
    /// same name, dtype and shape, so it is restored where `tensor` was.
    static func replacing(_ tensor: SourceTensor, with values: TensorData) -> SourceTensor {
        precondition(values.dtype == .f32 && values.count == tensor.count, "\(values.count) values for tensor '\(tensor.name)' of \(tensor.count)")
        return SourceTensor(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, fileName: tensor.fileName,
                            role: .residual, initRule: .zero, data: values, base: nil, note: tensor.note)
    }

    /// A tensor's residual as binary32 values.
    ///
    /// - Throws: ``QuantizeError`` naming the tensor when it holds NaN or ±Inf.
    static func finiteResidual(_ tensor: SourceTensor, release: Bool) throws(QuantizeError) -> [Float] {
        var values = [Float](repeating: 0, count: tensor.count)
        var finite = true
        values.withUnsafeMutableBufferPointer { out in
            let chunks = ResidualChunks(releasesPages: release)
            chunks.forEach(tensor) { offset, chunk in
                for (k, v) in chunk.enumerated() {
                    out[offset &+ k] = v
                    if !v.isFinite { finite = false }
                }
            }
        }
        guard finite else { throw nonFinite(tensor.name) }
        return values
    }

    static func nonFinite(_ name: String) -> QuantizeError {
        QuantizeError(tensor: name, "residual holds NaN or ±Inf; compeft will not silently keep or drop it (check the file)")
    }
}
