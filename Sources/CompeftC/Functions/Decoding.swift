import AdapterFormat
public import CCompeft
import TaskVector

// Decoding a tensor into a caller's buffer and applying it in place (include/compeft.h).

/// The output type for a `compeft_dtype` code: INVALID_ARGUMENT for a code the header does not define,
/// UNSUPPORTED for a type the serving path cannot write.
private func outputType(_ code: compeft_dtype, for t: ContainerIndex.Tensor, in container: OpenContainer) throws(ABIError) -> DType {
    guard let dtype = ABICodes.dtype(code: code) else {
        throw .invalidArgument("\(container.path): tensor '\(t.name)': \(code) is not a compeft_dtype code")
    }
    guard ContainerReader.decodableTypes.contains(dtype) else {
        throw .unsupported("\(container.path): tensor '\(t.name)': cannot write \(dtype.rawValue) values; use F32, F16 or BF16")
    }
    guard t.dtype.isFloatingPoint else {
        throw .unsupported("\(container.path): tensor '\(t.name)': its \(t.dtype.rawValue) values are not floating point")
    }
    return dtype
}

/// The bytes `t` takes as `dtype`; UNSUPPORTED if that does not fit in memory at all.
private func byteCount(of t: ContainerIndex.Tensor, as dtype: DType, in container: OpenContainer) throws(ABIError) -> Int {
    let (bytes, overflow) = t.count.multipliedReportingOverflow(by: dtype.byteSize)
    guard !overflow else {
        throw .unsupported("\(container.path): tensor '\(t.name)': \(t.count) values do not fit in memory")
    }
    return bytes
}

/// Checks a caller's (pointer, size) pair against the bytes a tensor needs.
private func checkedBuffer(_ pointer: UnsafeMutableRawPointer?, _ bytes: Int, needs needed: Int, exact: Bool,
                           what: String, _ t: ContainerIndex.Tensor, in container: OpenContainer) throws(ABIError) -> UnsafeMutableRawBufferPointer {
    let prefix = "\(container.path): tensor '\(t.name)'"
    guard bytes >= 0 else { throw .invalidArgument("\(prefix): \(what) size \(UInt(bitPattern: bytes)) is not a plausible size") }
    guard pointer != nil || bytes == 0 else { throw .invalidArgument("\(prefix): \(what) is NULL but its size is \(bytes)") }
    guard bytes >= needed else {
        throw .bufferTooSmall("\(prefix): \(what) holds \(bytes) bytes, the tensor needs \(needed)")
    }
    guard !exact || bytes == needed else {
        throw .invalidArgument("\(prefix): \(what) holds \(bytes) bytes, the tensor has exactly \(needed) (is it the right tensor?)")
    }
    return UnsafeMutableRawBufferPointer(start: needed == 0 ? nil : pointer, count: needed)
}

@c @implementation
public func compeft_decode(_ handle: compeft_handle, _ index: Int, _ dtype: compeft_dtype,
                           _ buffer: UnsafeMutableRawPointer!, _ bufferBytes: Int) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        let t = try container.tensor(at: index)
        let type = try outputType(dtype, for: t, in: container)
        let destination = try checkedBuffer(buffer, bufferBytes, needs: byteCount(of: t, as: type, in: container), exact: false,
                                            what: "buffer", t, in: container)
        // Without base weights a full fine-tune's tensor decodes to τ alone (the header says so).
        try container.reader.decode(t, as: type, into: destination, residualOnly: t.initRule == .base)
    }
}

@c @implementation
public func compeft_apply(_ handle: compeft_handle, _ index: Int, _ dtype: compeft_dtype,
                          _ weights: UnsafeMutableRawPointer!, _ weightsBytes: Int, _ factor: Float) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        let t = try container.tensor(at: index)
        let type = try outputType(dtype, for: t, in: container)
        guard factor.isFinite else {
            throw ABIError.invalidArgument("\(container.path): tensor '\(t.name)': factor \(factor) is not finite")
        }
        let target = try checkedBuffer(weights, weightsBytes, needs: byteCount(of: t, as: type, in: container), exact: true,
                                       what: "weights", t, in: container)
        // The Swift kernel loads whole elements, so it needs aligned memory; a misaligned buffer goes
        // through an aligned copy.
        guard let base = target.baseAddress, Int(bitPattern: base) % type.byteSize != 0 else {
            try container.reader.apply(t, to: target, as: type, factor: factor)
            return
        }
        let aligned = UnsafeMutableRawBufferPointer.allocate(byteCount: target.count, alignment: 16)
        defer { aligned.deallocate() }
        aligned.copyMemory(from: UnsafeRawBufferPointer(target))
        try container.reader.apply(t, to: aligned, as: type, factor: factor)
        target.copyMemory(from: UnsafeRawBufferPointer(aligned))
    }
}
