public import Quantize
public import TaskVector

/// What a merge did, for reports.
extension AdapterMerger {
    /// How one output tensor was produced.
    public struct TensorReport: Sendable {
        public enum How: String, Sendable {
            /// A residual merged with the method.
            case merged
            /// Not a residual; identical in every input, copied from the first.
            case copied
            /// Not a residual; differed between inputs, merged with the method as values.
            case mergedValues = "merged-values"
            /// A factor of a merged LoRA module (see ``ModuleReport``).
            case lora
        }

        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var how: How
        /// For ``How/merged``: whether it ran on ternary codes or on expanded floats.
        public var path: Path?
    }

    /// How one LoRA module was merged.
    public struct ModuleReport: Sendable {
        public var module: String
        /// Each input's rank.
        public var inputRanks: [Int]
        /// The merged module's rank.
        public var rank: Int
        public var how: LoRAModuleMerge
        /// Σ_{i>R} σᵢ² / Σ σᵢ² of the merged ΔW, for the SVD merges.
        public var discardedEnergy: Double?
    }

    /// Where a merge was written.
    public enum Destination: Sendable {
        /// A folder: a PEFT adapter folder for adapters, else the first input's files (shards and index).
        case folder
        /// One safetensors file (`-` for standard output) holding every tensor.
        case file
        /// One HDF5 file holding every tensor (datasets in groups split at `.`; see ``HDF5Writer``).
        case hdf5
        /// A `.cpeft` container: the folder output compressed with these options.
        case container(CompressionOptions, zstdLevel: Int32)
    }

    /// What a merge wrote.
    public struct Report: Sendable {
        public var outputPath: String
        /// File names written (inside the folder for a folder).
        public var files: [String]
        public var bytesWritten: UInt64
        public var tensors: [TensorReport]
        public var modules: [ModuleReport]
        /// For a `.cpeft` output, what compression did.
        public var compression: AdapterCompressor.Report?

        /// Tensors merged on ternary codes and on expanded floats.
        public var ternaryCount: Int { tensors.filter { $0.path == .ternary }.count }
        public var denseCount: Int { tensors.filter { $0.path == .dense }.count }
    }
}
