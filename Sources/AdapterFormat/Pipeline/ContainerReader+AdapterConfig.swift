public import TaskVector

extension ContainerReader {
    /// The `adapter_config.json` the container holds, parsed and checked against its tensors' shapes
    /// (see ``AdapterConfig/checkRanks(_:file:)``); `nil` when it holds none.
    ///
    /// Decompressing or merging a container whose config disagrees with its tensors would restore an
    /// adapter PEFT cannot load, so ``AdapterDecompressor`` and ``MergeSource`` call this first.
    ///
    /// - Throws: ``TaskVectorError`` naming the container: `.malformed` for a config PEFT would not
    ///   parse, `.mismatch` for a rank that disagrees with a tensor; ``FormatError`` when the file's
    ///   payload cannot be read.
    public func checkedAdapterConfig() throws -> AdapterConfig? {
        guard let file = index.files.first(where: { $0.name == "adapter_config.json" }) else { return nil }
        let config = try AdapterConfig(bytes: try contents(of: file), path: path)
        try config.checkRanks(index.tensors.map { ($0.name, $0.shape) }, file: path)
        return config
    }
}
