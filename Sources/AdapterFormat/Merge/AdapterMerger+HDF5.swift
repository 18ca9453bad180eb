import Foundation
import TaskVector

extension AdapterMerger {
    /// Merges every output tensor and writes them all into one HDF5 file, as `decompress` writes one:
    /// ``HDF5Writer`` takes the tensors at once, so they are held in memory until it has written them.
    ///
    /// - Returns: the size of the file written.
    func writeHDF5(to path: String, overwrite: Bool, progress: ((Int, Int) -> Void)?) throws -> UInt64 {
        var tensors: [LoadedTensor] = []
        for o in outputs {
            var bytes: [UInt8] = []
            try produce(o) { bytes.append(contentsOf: $0) }
            tensors.append(LoadedTensor(name: o.name, dtype: o.dtype, shape: o.shape, data: TensorData(dtype: o.dtype, copying: bytes)))
            progress?(tensors.count, outputs.count)
        }
        try HDF5Writer.write(tensors, to: path, overwrite: overwrite)
        return ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }
}
