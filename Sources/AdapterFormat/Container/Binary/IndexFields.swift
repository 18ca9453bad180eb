import TaskVector

/// The numbers a format 1.1 index gives its dtypes, flags and tagged fields (docs/FORMAT.md, "Index,
/// format 1.1"). They never change meaning; new ones are only added.
enum IndexFields {
    /// Dtype codes: the position in this list. New dtypes are appended.
    static let dtypes: [DType] = [.bool, .u8, .i8, .f8e5m2, .f8e4m3, .i16, .u16, .f16, .bf16, .i32, .u32, .f32, .f64, .i64, .u64]

    /// Init rule codes: the position in this list.
    static let initRules: [InitRule] = [.zero, .one, .base]

    /// A tag whose lowest bit is 1 is critical: a reader that does not know it refuses what it belongs to
    /// (the container, the file or the tensor). Other unknown tags are skipped.
    static func isCritical(_ tag: Int) -> Bool { tag & 1 == 1 }

    /// Tags of the container's fields.
    enum Container {
        /// String: the adapter's `peft_type`.
        static let peftType = 2
        /// Strings (uvarint length, bytes), to the end of the value: the names of the files read. Absent:
        /// the verbatim files' names followed by the output files' names.
        static let sources = 4
        /// String: which values share one scale (`tensor`, `module`), when it is not the scope's own rule.
        static let scaleScope = 6
        /// String: the gauge LoRA factors are stored in (`svd`, `svd-dct`), when it is not the trained one.
        static let loraGauge = 8
        /// String: the gauge asked for (`auto`), when it is not the one used.
        static let loraGaugeRequested = 10
    }

    /// Tags of a tensor's fields.
    enum Tensor {
        /// binary32 bit pattern: the tensor's own scale, instead of the group's (critical).
        static let scale = 1
        /// String: why the tensor is stored exactly.
        static let note = 2
        /// binary64: the tensor's σ (tensor scope).
        static let sigma = 4
        /// uvarint: kept values that are zero (`kept` − `nonzero`); absent: 0.
        static let zerosKept = 6
    }

    /// Bits of a tensor entry's flags byte.
    enum TensorFlag {
        static let initRuleMask: UInt8 = 0b11
        static let exact: UInt8 = 1 << 2
        static let hasFields: UInt8 = 1 << 7
        static let reserved: UInt8 = 0b0111_1000
    }

    /// Bits of a verbatim file entry's flags byte.
    enum FileFlag {
        /// Stored as a zstd frame in the payload area; otherwise its bytes are in the index.
        static let payload: UInt8 = 1 << 0
        static let hasFields: UInt8 = 1 << 7
        static let reserved: UInt8 = 0b0111_1110
    }

    /// What a reader accepts, so that no body — whatever a zstd frame expands to — makes it hold more
    /// than a few hundred MiB: front-coded names in particular could otherwise grow without end.
    enum Limit {
        static let tensors = 1 << 20
        /// Output files, and verbatim files.
        static let files = 1 << 16
        static let metadataPairs = 1 << 16
        static let rank = 64
        static let nameLength = 1 << 16
        /// All tensor names together.
        static let nameBytes = 1 << 28
    }

    /// Values of the group byte.
    enum Group {
        static let none: UInt8 = 0
        /// The group's d, kept and nonzero counts follow.
        static let counted: UInt8 = 1
        /// They are the sums over the residual tensors and are not stored.
        static let summed: UInt8 = 2
    }
}
