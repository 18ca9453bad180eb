public import AdapterFormat
import TaskVector
public import Foundation

/// The config blob of a compeft artifact (`application/vnd.compeft.config.v1+json`): what a client
/// needs to know about an expert before it downloads the container.
///
/// Everything here is copied from the container's index when it is pushed; the container stays the
/// authority (a reader never trusts the config over the index it decodes).
public struct ExpertConfig: Codable, Sendable, Equatable {
    /// The compeft version that pushed the artifact.
    public var compeftVersion: String
    /// The container format version, `major.minor`.
    public var containerFormat: String
    /// The tool that wrote the container (`compeft 0.1.0`).
    public var writtenBy: String
    /// `peft-adapter`, `residual` or `full-fine-tune`.
    public var inputKind: String
    /// `LORA`, `IA3`, … for PEFT adapters.
    public var peftType: String?
    /// `base_model_name_or_path` of the stored `adapter_config.json`, when it names one.
    public var baseModel: String?
    /// Method, scope, density and the figures of a global selection, as in the container's index.
    public var compression: ContainerIndex.Compression
    /// How the kept values' magnitude s was chosen: `norm-preserving` (s = ‖τ‖₂/√n, α auto),
    /// `alpha-sigma` (s = α·σ), `alpha-mean-kept` (STC, s = α·mean|kept|) or `unchanged` (prune).
    public var scaleRule: String
    public struct Counts: Codable, Sendable, Equatable {
        /// All tensors.
        public var tensors: Int
        /// Compressed residuals.
        public var residual: Int
        /// Tensors stored exactly.
        public var exact: Int
        /// Values in all tensors.
        public var values: Int
    }
    public var counts: Counts
    public struct Sizes: Codable, Sendable, Equatable {
        /// The container file.
        public var container: Int
        /// The tensors' data at their original dtypes.
        public var tensorData: Int
        /// The stored tensor payloads.
        public var payloads: Int
    }
    public var sizes: Sizes
    /// The stored `adapter_config.json`, verbatim (nil when the container holds none or it is not UTF-8).
    public var adapterConfig: String?

    /// Describes the container `reader` holds.
    public init(reader: ContainerReader) throws {
        let index = reader.index
        compeftVersion = CompeftVersion.string
        containerFormat = "\(reader.majorVersion).\(reader.minorVersion)"
        writtenBy = index.tool
        inputKind = index.inputKind
        peftType = index.peftType
        compression = index.compression
        switch (index.compression.method, index.compression.alphaRequested) {
        case ("compeft", "auto"): scaleRule = "norm-preserving"
        case ("compeft", _): scaleRule = "alpha-sigma"
        case ("stc", _): scaleRule = "alpha-mean-kept"
        default: scaleRule = "unchanged"
        }
        let residual = index.tensors.filter { $0.role == .residual }.count
        counts = Counts(tensors: index.tensors.count, residual: residual, exact: index.tensors.count - residual,
                        values: index.tensors.reduce(0) { $0 + $1.count })
        sizes = Sizes(container: reader.size, tensorData: index.tensors.reduce(0) { $0 + $1.count * $1.dtype.byteSize },
                      payloads: index.tensors.reduce(0) { $0 + $1.length })
        let config = try reader.adapterConfig()
        adapterConfig = config.flatMap { String(validating: $0, as: UTF8.self) }
        baseModel = config.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }?["base_model_name_or_path"] as? String
    }

    /// The blob's bytes: JSON with sorted keys.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try! encoder.encode(self)
    }

    /// Parses a config blob.
    public static func decode(_ bytes: Data, subject: String) throws -> ExpertConfig {
        do {
            return try JSONDecoder().decode(ExpertConfig.self, from: bytes)
        } catch {
            throw ExchangeError(.integrity, subject, "the compeft config blob is not valid: \(error)")
        }
    }
}
