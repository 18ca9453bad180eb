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
        /// What reading the input decided that the user should know (``TaskVectorInput/notes``).
        public var notes: [String] = []
    }

    /// Plans, codes and writes the container; the output is committed only when everything succeeded.
    ///
    /// Tensors are coded `threads` at a time and written in index order, so the bytes do not depend on
    /// the thread count.
    ///
    /// - Parameters:
    ///   - output: where the container goes: a file (``AtomicFileWriter``), memory (``MemoryByteSink``),
    ///     or only counted (``CountingByteSink``).
    ///   - threads: worker threads (default: all cores).
    ///   - progress: called after each tensor with (input bytes done, total input bytes).
    public static func compress(_ input: TaskVectorInput, options: CompressionOptions, to output: any ByteSink,
                                zstdLevel: Int32 = 19, threads: Int = defaultThreadCount,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        let plan = try Planner.plan(input.tensors, options: options, kind: input.expertKind, threads: threads)
        let writer = try ContainerWriter(output: output, zstdLevel: zstdLevel)
        for file in input.auxiliaryFiles { try writer.addFile(name: file.name, bytes: file.bytes) }
        let tensors = input.tensors
        let totalBytes = tensors.reduce(0) { $0 + $1.data.bytes.count }
        var doneBytes = 0
        var start = 0
        while start < tensors.count {
            let end = batchEnd(tensors, from: start, threads: threads)
            let first = start
            let path = output.name
            let coded = UnsafeSlots<Result<(ContainerIndex.Tensor, [UInt8], Int), any Error>?>(repeating: nil, count: end - start)
            parallelFor(count: end - start, threads: threads) { _, item in
                let i = first + item
                coded[item] = Result {
                    try code(plan.codedTensor(i, of: tensors), plan: plan.tensors[i], level: zstdLevel, file: path,
                             releasesPages: plan.releasesPages)
                }
            }
            for item in 0..<(end - start) {
                let (entry, stored, rawLength) = try coded[item]!.get()
                try writer.addTensor(entry, stored: stored, rawLength: rawLength)
                doneBytes += tensors[start + item].data.bytes.count
                progress?(doneBytes, totalBytes)
            }
            start = end
        }
        let index = ContainerIndex(
            tool: "compeft \(CompeftVersion.string)", inputKind: input.kind.rawValue,
            peftType: input.adapterConfig?.peftType, sources: input.sourceFiles.map(lastPathComponent),
            compression: .init(options: options, plan: plan, kind: input.expertKind), fileMetadata: input.fileMetadata, files: [], tensors: [])
        let written = try writer.finish(index: index)
        var report = Report(plan: plan, index: written, inputBytes: input.inputBytes, outputBytes: output.bytesWritten)
        report.notes = input.notes + plan.notes
        return report
    }
}

/// The end of the next batch of tensors coded in parallel from `start`: at least `threads` tensors,
/// more while they are small (up to ``batchTensors`` tensors and ``batchBytes`` input bytes), so that
/// thousands of small tensors do not each pay for a round of thread hand-offs, and the coded payloads
/// held at once stay bounded.
func batchEnd(_ tensors: [SourceTensor], from start: Int, threads: Int) -> Int {
    var end = start
    var bytes = 0
    while end < tensors.count, end - start < max(1, threads) || (end - start < batchTensors && bytes < batchBytes) {
        bytes += tensors[end].data.bytes.count
        end += 1
    }
    return end
}

let batchTensors = 4096
let batchBytes = 16 << 20

/// Codes one tensor: its index entry (without location), stored payload and raw payload length.
private func code(_ tensor: SourceTensor, plan tp: TensorPlan, level: Int32, file: String,
                  releasesPages: Bool) throws -> (ContainerIndex.Tensor, [UInt8], Int) {
    var entry = ContainerIndex.Tensor(
        name: tensor.name, file: tensor.fileName, dtype: tensor.dtype, shape: tensor.shape,
        role: tensor.role, initRule: tensor.initRule, note: tp.exactReason,
        encoding: PayloadEncoding.raw.rawValue, count: tensor.count, kept: tensor.count, nonzero: 0,
        scaleBits: 0, scale: 0,
        sigma: tp.sigma,
        alpha: tp.sigma.map { $0 > 0 ? Double(tp.scale) / $0 : 0 },
        offset: 0, length: 0, rawLength: 0, xxh64: "")
    switch tp.storage {
    case .exact:
        if tensor.role == .residual { entry.role = .exact }
        let stored = try ContainerWriter.compress(tensor.data.bytes, level: level, file: file, what: tensor.name)
        return (entry, stored, tensor.data.bytes.count)
    case .ternary, .sparse:
        let code = TernaryCode.encode(tensor, thresholdBits: tp.thresholdBits, keepValues: tp.storage == .sparse,
                                      chunks: ResidualChunks(releasesPages: releasesPages))
        entry.kept = code.keptCount
        entry.nonzero = code.nonzeroCount
        if tp.storage == .sparse {
            entry.encoding = PayloadEncoding.sparseFloat.rawValue
            let raw = PayloadEncoding.rawBytes(of: code)
            let stored = try raw.withUnsafeBytes { try ContainerWriter.compress($0, level: level, file: file, what: tensor.name) }
            return (entry, stored, raw.count)
        }
        entry.scaleBits = tp.scale.bitPattern
        entry.scale = tp.scale
        // The gap coder, unless zstd on the plain mask+signs packing is smaller (it can be on small, highly
        // structured tensors). The comparison is skipped above `zstdCandidateLimit` values, where zstd at
        // high levels is slow and the gap coder measured smaller on every input tried (docs/PERFORMANCE.md),
        // and for a gap code no longer than the shortest zstd frame.
        let gap = GapCoder.encode(code)
        if tensor.count <= zstdCandidateLimit, gap.count > Zstd.minimumFrameSize {
            let raw = PayloadEncoding.rawBytes(of: code)
            let framed = try raw.withUnsafeBytes { try ContainerWriter.compress($0, level: level, file: file, what: tensor.name) }
            if framed.count < gap.count {
                entry.encoding = PayloadEncoding.ternaryBitmap.rawValue
                return (entry, framed, raw.count)
            }
        }
        entry.encoding = PayloadEncoding.ternaryGap.rawValue
        return (entry, gap, gap.count)
    }
}

/// Tensors up to this many values also try zstd on the plain packing and keep the smaller payload (the
/// fixture table in docs/PERFORMANCE.md: zstd wins only on a few small, structured tensors, and zstd-19
/// on a large mask costs more than the rest of compression).
let zstdCandidateLimit = 1 << 16

func lastPathComponent(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
