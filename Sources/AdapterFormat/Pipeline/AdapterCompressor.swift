public import Quantize
public import TaskVector

/// Compresses a ``TaskVectorInput`` into a container.
public enum AdapterCompressor {
    /// What one compression did, for reports.
    public struct Report: Sendable {
        public var plan: CompressionPlan
        public var index: ContainerIndex
        /// Bytes of the input files (the fine-tune or adapter, not the base) and of the container.
        public var inputBytes: Int
        public var outputBytes: UInt64
    }

    /// Plans, codes and writes the container; the output is committed only when everything succeeded.
    ///
    /// - Parameters:
    ///   - progress: called after each tensor with (tensors done, total).
    public static func compress(_ input: TaskVectorInput, options: CompressionOptions, to output: AtomicFileWriter,
                                zstdLevel: Int32 = 19, progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        let plan = try Planner.plan(input.tensors, options: options)
        let writer = try ContainerWriter(output: output, zstdLevel: zstdLevel)
        for file in input.auxiliaryFiles { try writer.addFile(name: file.name, bytes: file.bytes) }
        let chunks = ResidualChunks()
        for (i, (tensor, tp)) in zip(input.tensors, plan.tensors).enumerated() {
            let group = plan.global ?? plan.perTensor[tensor.name]
            var entry = ContainerIndex.Tensor(
                name: tensor.name, file: tensor.fileName, dtype: tensor.dtype, shape: tensor.shape,
                role: tensor.role, initRule: tensor.initRule, note: tp.exactReason,
                encoding: PayloadEncoding.raw.rawValue, count: tensor.count, kept: tensor.count, nonzero: 0,
                scaleBits: 0, scale: 0,
                sigma: options.scope == .tensor ? group?.sigma : nil,
                alpha: options.scope == .tensor ? group?.alpha : nil,
                offset: 0, length: 0, rawLength: 0, xxh64: "")
            switch tp.storage {
            case .exact:
                if tensor.role == .residual { entry.role = .exact }
                try writer.addTensor(entry, raw: tensor.data.bytes)
            case .ternary, .sparse:
                let code = TernaryCode.encode(tensor, thresholdBits: tp.thresholdBits, keepValues: tp.storage == .sparse, chunks: chunks)
                entry.encoding = (tp.storage == .sparse ? PayloadEncoding.sparseFloat : .ternaryBitmap).rawValue
                entry.kept = code.keptCount
                entry.nonzero = code.nonzeroCount
                if tp.storage == .ternary {
                    entry.scaleBits = tp.scale.bitPattern
                    entry.scale = tp.scale
                }
                let raw = PayloadEncoding.rawBytes(of: code)
                try raw.withUnsafeBytes { try writer.addTensor(entry, raw: $0) }
            }
            progress?(i + 1, input.tensors.count)
        }
        let index = ContainerIndex(
            tool: "compeft \(CompeftVersion.string)", inputKind: input.kind.rawValue,
            peftType: input.adapterConfig?.peftType, sources: input.sourceFiles.map(lastPathComponent),
            compression: .init(options: options, plan: plan), fileMetadata: input.fileMetadata, files: [], tensors: [])
        try writer.finish(index: index)
        var final = index
        final.tensors = writer.tensors
        final.files = writer.files
        return Report(plan: plan, index: final, inputBytes: input.inputBytes, outputBytes: output.bytesWritten)
    }
}

func lastPathComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
