/// What `-o PATH` writes, decided by the name alone, the same for `decompress` and `merge` (and their C
/// ABI and Python calls), whatever the input holds:
///
/// | `-o` | writes |
/// |---|---|
/// | `NAME.safetensors`, or `-` (standard output) | one safetensors file with every tensor |
/// | `NAME.h5`, `NAME.hdf5` | one HDF5 file with every tensor |
/// | `NAME.cpeft` | a container (`merge` only; `decompress` refuses it) |
/// | anything else | a folder: a PEFT adapter folder for an adapter, else the input's files |
///
/// Extensions are matched without regard to case. A one-file output holds tensors only: files a
/// container carries beside them (`adapter_config.json`, a checkpoint's `config.json`) go only into a
/// folder, and a command that leaves them out says so.
public enum OutputTarget: String, Sendable, CaseIterable {
    /// A folder.
    case folder
    /// One safetensors file (or standard output).
    case safetensors
    /// One HDF5 file.
    case hdf5
    /// A `.cpeft` container.
    case container = "cpeft"

    /// The target `path` names.
    public init(path: String) {
        let name = path.lowercased()
        if path == "-" || name.hasSuffix(".safetensors") {
            self = .safetensors
        } else if name.hasSuffix(".h5") || name.hasSuffix(".hdf5") {
            self = .hdf5
        } else if name.hasSuffix(".cpeft") {
            self = .container
        } else {
            self = .folder
        }
    }

    /// Whether the target is one file.
    public var isFile: Bool { self != .folder }
}

/// `decompress --format`: the tensor file format, which the output's name already says (see
/// ``OutputTarget``); given, it must agree with the name.
public enum OutputFormat: String, CaseIterable, Sendable, SettingName {
    /// safetensors: a `.safetensors` file, or the files of a folder.
    case safetensors
    /// HDF5: a `.h5` or `.hdf5` file.
    case hdf5
}
