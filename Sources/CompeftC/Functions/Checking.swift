import AdapterFormat
import Commands
public import CCompeft
import TaskVector

// compeft_inspect_json, compeft_verify and compeft_exact_bytes (include/compeft.h, "Writing and checking
// containers").

@c @implementation
public func compeft_inspect_json(_ handle: compeft_handle, _ buffer: UnsafeMutablePointer<CChar>!, _ size: Int,
                                 _ outNeeded: UnsafeMutablePointer<Int>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        try checkArguments(buffer, size, function: "compeft_inspect_json")
        let report: [UInt8]
        do {
            report = try CommandReports.encode(CommandReports.inspect(container.reader, file: container.reader.path))
        } catch {
            throw ABIError(status: .unsupported, message: "the report cannot be written as JSON: \(error)")
        }
        try copyOut(report, to: buffer, size: size, needed: outNeeded, what: "the inspect report", in: container)
    }
}

@c @implementation
public func compeft_verify(_ path: UnsafePointer<CChar>!, _ outReport: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> compeft_status {
    outReport?.pointee = nil
    return withStatus {
        let name = try PathArguments.path(path, "path", function: "compeft_verify")
        // As `compeft verify`: a file that is not an intact container is a finding, not a failed call.
        try OwnedString.hand(CommandReports.verify(ContainerVerification(path: name)), to: outReport)
    }
}

@c @implementation
public func compeft_exact_bytes(_ handle: compeft_handle, _ index: Int, _ buffer: UnsafeMutableRawPointer!,
                                _ bufferBytes: Int) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        let t = try container.tensor(at: index)
        let prefix = "\(container.path): tensor '\(t.name)'"
        guard t.role == .exact else {
            throw ABIError.unsupported("\(prefix): is a compressed residual, not stored exactly; decode it with compeft_decode")
        }
        let (needed, overflow) = t.count.multipliedReportingOverflow(by: t.dtype.byteSize)
        guard !overflow else { throw ABIError.unsupported("\(prefix): \(t.count) values do not fit in memory") }
        guard bufferBytes >= 0 else { throw ABIError.invalidArgument("\(prefix): buffer size \(UInt(bitPattern: bufferBytes)) is not a plausible size") }
        guard buffer != nil || bufferBytes == 0 else { throw ABIError.invalidArgument("\(prefix): buffer is NULL but its size is \(bufferBytes)") }
        guard bufferBytes >= needed else {
            throw ABIError.bufferTooSmall("\(prefix): buffer holds \(bufferBytes) bytes, the tensor needs \(needed)")
        }
        guard case .exact(let raw) = try container.reader.payload(t) else {
            throw ABIError(status: .corrupt, message: "\(prefix): the index says exact, the payload is a ternary code")
        }
        guard raw.count == needed else {
            throw ABIError(status: .corrupt, message: "\(prefix): the payload holds \(raw.count) bytes, \(t.count) \(t.dtype.rawValue) values need \(needed)")
        }
        guard needed > 0 else { return }
        raw.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: needed) }
    }
}
