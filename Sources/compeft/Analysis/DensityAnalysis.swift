import AdapterFormat
import Foundation
import Quantize
import TaskVector

/// `analyze`'s measurements: for each density, the container the real compressor writes and the
/// figures of its reconstruction.
struct DensityAnalysis {
    /// Sizes of one density's container, as `compress` writes it.
    struct Sizes {
        /// The whole container: preamble, every payload, the index and the trailer.
        var containerBytes: Int
        /// All tensor payloads (residuals and tensors stored exactly).
        var payloadBytes: Int
        /// Payloads of the residual tensors.
        var residualPayloadBytes: Int
        /// Payload bytes by tensor name.
        var tensorPayloadBytes: [String: Int]
    }

    struct Density {
        var point: DensitySweep.Point
        var sizes: Sizes
    }

    var input: String
    /// The base model of a full fine-tune.
    var base: String?
    var kind: TaskVectorInput.Kind
    var peftType: String?
    /// Bytes of the input's own files (not the base).
    var inputBytes: Int
    var options: CompressionOptions
    /// Residual tensors and their values, d.
    var residualTensors: Int
    var residualValues: Int
    var densities: [Density]

    /// Bytes of an f16 copy of the residuals (2 per value).
    var f16Bytes: Int { 2 * residualValues }

    /// Compresses `taskVector` once per density into a temporary container (then deletes it) and
    /// measures every plan's reconstruction in one streaming pass.
    ///
    /// - Parameter progress: called with (steps done, steps) after each density and after the pass.
    static func run(_ taskVector: TaskVectorInput, input: String, base: String?, options: CompressionOptions, densities: [TaskVector.Density],
                    progress: (Int, Int) -> Void) throws -> DensityAnalysis {
        let fm = FileManager.default
        let folder = fm.temporaryDirectory.appendingPathComponent("compeft-analyze-\(getpid())-\(UUID().uuidString)").path
        try? fm.removeItem(atPath: folder)
        // Made and registered while removal is held off, so SIGINT, SIGTERM and SIGHUP remove it too.
        let made: Result<TemporaryFiles.Token, CLIError> = TemporaryFiles.withRemovalHeld { registry in
            do {
                try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                return .failure(CLIError(status: .ioError, message: "\(folder): cannot create a temporary folder: \(error.localizedDescription)"))
            }
            return .success(registry.add(folder, isFolder: true))
        }
        let registered = try made.get()
        defer {
            try? fm.removeItem(atPath: folder)
            TemporaryFiles.unregister(registered)
        }
        let residualNames = Set(taskVector.tensors.filter { $0.role == .residual }.map(\.name))
        var reports: [(CompressionPlan, Sizes)] = []
        for (i, density) in densities.enumerated() {
            var o = options
            o.density = density
            let path = folder + "/density-\(i).cpeft"
            let writer = try AtomicFileWriter(path: path)
            let report: AdapterCompressor.Report
            do {
                report = try AdapterCompressor.compress(taskVector, options: o, to: writer)
            } catch {
                writer.abandon()
                throw error
            }
            try? fm.removeItem(atPath: path)
            var byName: [String: Int] = [:]
            for t in report.index.tensors { byName[t.name] = t.length }
            let sizes = Sizes(
                containerBytes: Int(report.outputBytes),
                payloadBytes: report.index.tensors.reduce(0) { $0 + $1.length },
                residualPayloadBytes: report.index.tensors.filter { residualNames.contains($0.name) }.reduce(0) { $0 + $1.length },
                tensorPayloadBytes: byName)
            reports.append((report.plan, sizes))
            progress(i + 1, densities.count + 1)
        }
        let points = DensitySweep.measure(taskVector.tensors, plans: reports.map(\.0))
        progress(densities.count + 1, densities.count + 1)
        let residuals = taskVector.tensors.filter { $0.role == .residual }
        return DensityAnalysis(
            input: input, base: base, kind: taskVector.kind, peftType: taskVector.adapterConfig?.peftType,
            inputBytes: taskVector.inputBytes, options: options, residualTensors: residuals.count,
            residualValues: residuals.reduce(0) { $0 + $1.count },
            densities: zip(points, reports).map { Density(point: $0, sizes: $1.1) })
    }
}

extension DensityAnalysis.Density {
    /// Bits per residual value of the residual payloads.
    var bitsPerParameter: Double? {
        point.total.statistics.count > 0 ? 8 * Double(sizes.residualPayloadBytes) / Double(point.total.statistics.count) : nil
    }

    /// Bits per residual value of the whole container.
    var containerBitsPerParameter: Double? {
        point.total.statistics.count > 0 ? 8 * Double(sizes.containerBytes) / Double(point.total.statistics.count) : nil
    }

    /// Input file bytes over container bytes.
    func ratioVsInput(_ inputBytes: Int) -> Double? {
        sizes.containerBytes > 0 ? Double(inputBytes) / Double(sizes.containerBytes) : nil
    }

    /// An f16 copy of the residuals (2 bytes per value) over the residual payloads.
    var ratioVsF16: Double? {
        sizes.residualPayloadBytes > 0 ? 2 * Double(point.total.statistics.count) / Double(sizes.residualPayloadBytes) : nil
    }
}
