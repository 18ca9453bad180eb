import TaskVector

/// Why a binary index does not parse; the reader turns it into a ``FormatError`` naming the file.
struct BinaryIndexError: Error {
    var message: String
    /// The tensor being read, when the problem is inside one tensor's entry.
    var tensor: String?
    /// The index asks for something this compeft does not know (a newer writer), rather than being damaged.
    var unsupported = false

    init(_ message: String, tensor: String? = nil, unsupported: Bool = false) {
        self.message = message
        self.tensor = tensor
        self.unsupported = unsupported
    }
}

/// A cursor over the bytes of a format 1.1 index body (docs/FORMAT.md, "Index, format 1.1"): every read
/// checks that its bytes are there and throws otherwise, so no field from a file can trap or allocate
/// more than the body holds.
struct BinaryIndexReader {
    private let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Bytes not read yet.
    var remaining: Int { bytes.count - position }

    /// Whether every byte was read.
    var isAtEnd: Bool { position == bytes.count }

    mutating func u8(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> UInt8 {
        guard position < bytes.count else { throw BinaryIndexError("index ends inside \(what())") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> UInt32 {
        try fixed(UInt32.self, what())
    }

    /// A binary32 bit pattern.
    mutating func f32Bits(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> UInt32 {
        try fixed(UInt32.self, what())
    }

    /// A finite binary64.
    mutating func finiteF64(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> Double {
        let value = Double(bitPattern: try fixed(UInt64.self, what()))
        guard value.isFinite else { throw BinaryIndexError("\(what()) is not a finite number") }
        return value
    }

    private mutating func fixed<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(BinaryIndexError) -> T {
        let value = bytes.withUnsafeBytes { $0.readLE(T.self, at: position) }
        guard let value else { throw BinaryIndexError("index ends inside \(what)") }
        position += MemoryLayout<T>.size
        return value
    }

    /// An unsigned LEB128 integer: at most 9 bytes, no redundant final zero byte, below 2⁶³.
    mutating func uvarint(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> Int {
        var value: UInt64 = 0
        for i in 0..<9 {
            guard position < bytes.count else { throw BinaryIndexError("index ends inside \(what())") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << (7 * UInt64(i))
            if byte & 0x80 == 0 {
                guard byte != 0 || i == 0 else { throw BinaryIndexError("\(what()) is not written in its shortest form") }
                return Int(value)  // 9 groups of 7 bits: below 2⁶³
            }
        }
        throw BinaryIndexError("\(what()) is longer than 9 bytes")
    }

    /// A uvarint that must not exceed `limit`.
    mutating func uvarint(_ what: @autoclosure () -> String, atMost limit: Int) throws(BinaryIndexError) -> Int {
        let value = try uvarint(what())
        guard value <= limit else { throw BinaryIndexError("\(what()) \(value) exceeds \(limit)") }
        return value
    }

    /// `count` raw bytes.
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(BinaryIndexError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw BinaryIndexError("\(what()) runs past the end of the index") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    /// A uvarint byte count, then that many bytes of UTF-8.
    mutating func string(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> String {
        let count = try uvarint(what())
        return try utf8(bytes(count, what()), what())
    }

    /// `raw` as a string, refusing invalid UTF-8.
    func utf8(_ raw: ArraySlice<UInt8>, _ what: @autoclosure () -> String) throws(BinaryIndexError) -> String {
        guard let s = String(validating: raw, as: UTF8.self) else { throw BinaryIndexError("\(what()) is not valid UTF-8") }
        return s
    }

    /// Reads a list of tagged fields up to its terminating tag 0 (docs/FORMAT.md, "Tagged fields"):
    /// `(tag, value)` pairs in order. A tag may appear once.
    mutating func taggedFields(_ what: @autoclosure () -> String) throws(BinaryIndexError) -> [(tag: Int, value: ArraySlice<UInt8>)] {
        var fields: [(tag: Int, value: ArraySlice<UInt8>)] = []
        while true {
            let tag = try uvarint("a field tag of \(what())")
            if tag == 0 { return fields }
            guard !fields.contains(where: { $0.tag == tag }) else { throw BinaryIndexError("field \(tag) of \(what()) appears twice") }
            let length = try uvarint("the length of field \(tag) of \(what())")
            fields.append((tag, try bytes(length, "field \(tag) of \(what())")))
        }
    }
}

/// Reads the value of one tagged field, which must be used up exactly.
extension BinaryIndexReader {
    /// Parses `value` with `body`, which must read all of it.
    static func parse<T>(_ value: ArraySlice<UInt8>, _ what: String,
                         _ body: (inout BinaryIndexReader) throws(BinaryIndexError) -> T) throws(BinaryIndexError) -> T {
        var r = BinaryIndexReader(Array(value))
        let result = try body(&r)
        guard r.isAtEnd else { throw BinaryIndexError("\(what) has \(r.remaining) bytes left over") }
        return result
    }
}
