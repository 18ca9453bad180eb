import TaskVector

/// Appends the fields of a format 1.1 index body (docs/FORMAT.md, "Index, format 1.1"): little-endian
/// fixed-width numbers, LEB128 integers, length-prefixed strings and tagged fields.
struct BinaryIndexWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func u32(_ value: UInt32) {
        bytes.appendLE(value)
    }

    mutating func f64(_ value: Double) {
        bytes.appendLE(value.bitPattern)
    }

    /// An unsigned LEB128 integer in its shortest form.
    mutating func uvarint(_ value: Int) {
        precondition(value >= 0, "uvarint of a negative value")
        var v = UInt64(value)
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func raw(_ value: some Collection<UInt8>) {
        bytes.append(contentsOf: value)
    }

    /// The byte count as a uvarint, then the UTF-8 bytes.
    mutating func string(_ value: String) {
        uvarint(value.utf8.count)
        bytes.append(contentsOf: value.utf8)
    }

    /// One tagged field: tag, value length, value.
    mutating func field(_ tag: Int, _ value: [UInt8]) {
        precondition(tag > 0, "tag 0 ends a field list")
        uvarint(tag)
        uvarint(value.count)
        bytes.append(contentsOf: value)
    }

    /// One tagged field whose value is written by `body`.
    mutating func field(_ tag: Int, _ body: (inout BinaryIndexWriter) -> Void) {
        var value = BinaryIndexWriter()
        body(&value)
        field(tag, value.bytes)
    }

    /// Ends a list of tagged fields.
    mutating func endFields() {
        uvarint(0)
    }
}
