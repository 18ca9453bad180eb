public import CCompeft

// The index as JSON and the stored adapter_config.json (include/compeft.h).

/// Copies `bytes` and a NUL into a caller's (buffer, size), reporting the size needed.
func copyOut(_ bytes: [UInt8], to buffer: UnsafeMutablePointer<CChar>?, size: Int,
                     needed: UnsafeMutablePointer<Int>?, what: String, in container: OpenContainer) throws(ABIError) {
    let total = bytes.count + 1
    needed?.pointee = total
    guard size >= total else {
        throw .bufferTooSmall("\(container.path): \(what) needs \(total) bytes (with its NUL), the buffer holds \(size)")
    }
    let out = UnsafeMutableRawPointer(buffer!)
    bytes.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    out.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
}

/// Checks the (buffer, size) pair before any work.
func checkArguments(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int, function: String) throws(ABIError) {
    guard size >= 0 else { throw .invalidArgument("\(function): size \(UInt(bitPattern: size)) is not a plausible size") }
    guard buffer != nil || size == 0 else { throw .invalidArgument("\(function): buffer is NULL but size is \(size)") }
}

@c @implementation
public func compeft_metadata_json(_ handle: compeft_handle, _ buffer: UnsafeMutablePointer<CChar>!, _ size: Int,
                                  _ outNeeded: UnsafeMutablePointer<Int>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        try checkArguments(buffer, size, function: "compeft_metadata_json")
        try copyOut(container.metadataJSON(), to: buffer, size: size, needed: outNeeded, what: "the index JSON", in: container)
    }
}

@c @implementation
public func compeft_adapter_config(_ handle: compeft_handle, _ buffer: UnsafeMutablePointer<CChar>!, _ size: Int,
                                   _ outNeeded: UnsafeMutablePointer<Int>!) -> compeft_status {
    withStatus {
        let container = try HandleTable.container(handle)
        try checkArguments(buffer, size, function: "compeft_adapter_config")
        guard let config = try container.verbatimFile(named: "adapter_config.json") else {
            throw ABIError.notFound("\(container.path): the container holds no adapter_config.json (it is not a PEFT adapter)")
        }
        try copyOut(config, to: buffer, size: size, needed: outNeeded, what: "adapter_config.json", in: container)
    }
}
