import AdapterFormat
import Quantize
public import TaskVector

/// The settings of `decompress`, as the flags and the C ABI's options give them (`nil`: not given).
public struct DecompressSettings: Sendable {
    public var input: String
    public var output: String
    public var dtype: DType?
    public var format: OutputFormat?
    public var base: String?
    public var threads: Int?
    public var force: Bool

    public init(input: String, output: String, dtype: DType? = nil, format: OutputFormat? = nil, base: String? = nil,
                threads: Int? = nil, force: Bool = false) {
        self.input = input
        self.output = output
        self.dtype = dtype
        self.format = format
        self.base = base
        self.threads = threads
        self.force = force
    }

    /// The plan: what `output` names (``OutputTarget``), checked against `format`.
    ///
    /// - Throws: ``SettingsError`` for threads below 1, a `.cpeft` output, or a format that disagrees
    ///   with the output's name.
    public func plan() throws(SettingsError) -> DecompressPlan {
        if let threads, threads < 1 { throw SettingsError { "\($0.name("threads")) must be at least 1, got \(threads)" } }
        let target = OutputTarget(path: output)
        if target == .container {
            throw SettingsError { _ in
                "decompress writes tensors, not a container: '\(output)' ends in .cpeft; name a folder, NAME.safetensors or NAME.h5"
            }
        }
        if let format {
            let agrees = format == .hdf5 ? target == .hdf5 : target != .hdf5
            guard agrees else {
                let what = output == "-" ? "'-' (standard output) takes safetensors" : "'\(output)' names \(target == .hdf5 ? "an HDF5 file" : target == .folder ? "a folder" : "a safetensors file")"
                throw SettingsError {
                    "\($0.name("format")) \(format.rawValue) disagrees with the output: \(what); the output's name decides the format "
                        + "(NAME.h5 or NAME.hdf5 for HDF5, NAME.safetensors for one file, any other name for a folder)"
                }
            }
        }
        return DecompressPlan(input: input, output: output, target: target, dtype: dtype, base: base,
                              threads: threads ?? defaultThreadCount, force: force)
    }
}
