import AdapterFormat
public import CCompeft
import TaskVector

// Listing and describing tensors (include/compeft.h).

@c @implementation
public func compeft_tensor_count(_ handle: compeft_handle, _ outCount: UnsafeMutablePointer<Int>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        guard let outCount else { throw ABIError.invalidArgument("compeft_tensor_count: out_count is NULL") }
        outCount.pointee = container.tensorCount
    }
}

@c @implementation
public func compeft_tensor_info(_ handle: compeft_handle, _ index: Int,
                                _ outInfo: UnsafeMutablePointer<compeft_tensor_desc>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        guard let outInfo else { throw ABIError.invalidArgument("compeft_tensor_info: out_info is NULL") }
        let t = try container.tensor(at: index)
        var info = compeft_tensor_desc()
        info.name = UnsafePointer(container.names[index])
        info.file = UnsafePointer(container.files[index])
        info.rank = UInt32(t.shape.count)
        info.dtype = ABICodes.code(of: t.dtype)
        info.role = ABICodes.code(of: t.role)
        info.`init` = ABICodes.code(of: t.initRule)
        withUnsafeMutableBytes(of: &info.shape) { raw in
            let shape = raw.bindMemory(to: Int64.self)
            for (i, d) in t.shape.prefix(shape.count).enumerated() { shape[i] = Int64(d) }
        }
        info.count = Int64(t.count)
        info.kept = Int64(t.kept)
        info.nonzero = Int64(t.nonzero)
        info.scale = Float(bitPattern: t.scaleBits)
        info.encoding = UInt32(truncatingIfNeeded: t.encoding)
        outInfo.pointee = info
        guard t.shape.count <= Int(COMPEFT_MAX_RANK) else {
            throw ABIError.unsupported(
                "\(container.path): tensor '\(t.name)': rank \(t.shape.count) exceeds COMPEFT_MAX_RANK (\(COMPEFT_MAX_RANK)); shape \(t.shape)")
        }
    }
}

@c @implementation
public func compeft_find_tensor(_ handle: compeft_handle, _ name: UnsafePointer<CChar>!,
                                _ outIndex: UnsafeMutablePointer<Int>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        guard let name else { throw ABIError.invalidArgument("compeft_find_tensor: name is NULL") }
        guard let outIndex else { throw ABIError.invalidArgument("compeft_find_tensor: out_index is NULL") }
        let swiftName = String(cString: name)
        guard let index = container.index(of: swiftName) else {
            throw ABIError.notFound("\(container.path): no tensor named '\(swiftName)'")
        }
        outIndex.pointee = index
    }
}
