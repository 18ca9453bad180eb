import AdapterFormat
public import CCompeft
import TaskVector

// Opening a container read through caller-supplied callbacks (include/compeft.h, "Containers from any
// transport"). The library never reads a network itself; the caller's `read_at` does.

@c @implementation
public func compeft_open_reader(_ reader: UnsafePointer<compeft_reader>!, _ outHandle: UnsafeMutablePointer<compeft_handle>!) -> compeft_status {
    outHandle?.pointee = 0
    // Once `reader` is known, its release runs exactly once: through the source's deinit when a source
    // was made, directly otherwise.
    var source: CallbackByteSource?
    let status = withStatus {
        guard let reader else { throw ABIError.invalidArgument("compeft_open_reader: reader is NULL") }
        let r = reader.pointee
        guard let readAt = r.read_at else {
            r.release?(r.context)
            throw ABIError.invalidArgument("compeft_open_reader: read_at is NULL")
        }
        guard let outHandle else {
            r.release?(r.context)
            throw ABIError.invalidArgument("compeft_open_reader: out_handle is NULL")
        }
        guard r.size <= UInt64(Int.max) else {
            r.release?(r.context)
            throw ABIError.invalidArgument("compeft_open_reader: size \(r.size) is larger than this platform addresses")
        }
        let name = r.name.map { String(cString: $0) } ?? "reader"
        let s = CallbackByteSource(size: Int(r.size), name: name, readAt: readAt, release: r.release, context: r.context)
        source = s
        let container = try OpenContainer(reader: ContainerReader(source: s))
        outHandle.pointee = try HandleTable.insert(container)
    }
    source = nil  // on failure the last reference: release runs here
    return status
}
