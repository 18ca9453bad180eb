import AdapterFormat
public import CCompeft
import TaskVector

// Version, errors, open and close. Each function implements the declaration of the same name in
// include/compeft.h; `@c @implementation` makes the compiler check the signature against the header.

nonisolated(unsafe) private let versionString = StaticCString.make(CompeftVersion.string)

nonisolated(unsafe) private let statusNames: [compeft_status: UnsafePointer<CChar>] = {
    let names: [(compeft_status, String)] = [
        (.ok, "COMPEFT_OK"), (.invalidArgument, "COMPEFT_ERR_INVALID_ARGUMENT"), (.badHandle, "COMPEFT_ERR_BAD_HANDLE"),
        (.notFound, "COMPEFT_ERR_NOT_FOUND"), (.bufferTooSmall, "COMPEFT_ERR_BUFFER_TOO_SMALL"),
        (.corrupt, "COMPEFT_ERR_CORRUPT"), (.unsupported, "COMPEFT_ERR_UNSUPPORTED"), (.io, "COMPEFT_ERR_IO"),
    ]
    return Dictionary(uniqueKeysWithValues: names.map { ($0.0, StaticCString.make($0.1)) })
}()

nonisolated(unsafe) private let unknownStatusName = StaticCString.make("COMPEFT_UNKNOWN_STATUS")

@c @implementation
public func compeft_version() -> UnsafePointer<CChar>! {
    versionString
}

@c @implementation
public func compeft_abi_version() -> UInt32 {
    UInt32(COMPEFT_ABI_VERSION)
}

@c @implementation
public func compeft_last_error() -> UnsafePointer<CChar>! {
    LastError.current
}

@c @implementation
public func compeft_status_name(_ status: compeft_status) -> UnsafePointer<CChar>! {
    statusNames[status] ?? unknownStatusName
}

@c @implementation
public func compeft_open(_ path: UnsafePointer<CChar>!, _ outHandle: UnsafeMutablePointer<compeft_handle>!) -> compeft_status {
    outHandle?.pointee = 0
    return withStatus {
        guard let path else { throw ABIError.invalidArgument("compeft_open: path is NULL") }
        guard let outHandle else { throw ABIError.invalidArgument("compeft_open: out_handle is NULL") }
        let name = String(cString: path)
        guard !name.isEmpty else { throw ABIError.invalidArgument("compeft_open: path is empty") }
        // Read with pread, never mapped: a file truncated under an open handle is COMPEFT_ERR_IO, not
        // SIGBUS in the host process. "-" is a file name here (the CLI's stdin convention does not apply).
        let container = try OpenContainer(reader: ContainerReader(source: FileByteSource(path: name)))
        outHandle.pointee = try HandleTable.insert(container)
    }
}

@c @implementation
public func compeft_close(_ handle: compeft_handle) -> compeft_status {
    withStatus { try HandleTable.remove(handle) }
}
