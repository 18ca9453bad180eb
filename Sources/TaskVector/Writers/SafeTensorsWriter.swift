/// Writes safetensors files with the layout the reference implementation produces.
///
/// Tensors are laid out by dtype (widest first, the reference's order) and then by name; the JSON
/// header lists `__metadata__` first and the tensors in layout order, compact, padded with spaces to
/// a multiple of 8 bytes. Data is streamed: each tensor's bytes come from a closure, so no tensor
/// needs to be in memory twice.
public enum SafeTensorsWriter {
    /// One tensor to write.
    public struct Entry {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Streams exactly `count × dtype.byteSize` bytes to the sink, in order.
        public var produce: (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void

        public init(name: String, dtype: DType, shape: [Int],
                    produce: @escaping (_ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.produce = produce
        }

        public var byteCount: Int { (checkedElementCount(shape) ?? 0) * dtype.byteSize }
    }

    /// Orders entries as the reference writer does: dtype descending, then name ascending (bytewise).
    public static func layoutOrder(_ entries: [Entry]) -> [Entry] {
        layoutOrder(entries.lazy.map { ($0.name, $0.dtype) }).map { entries[$0] }
    }

    /// The positions of `tensors` (name, dtype) in the reference writer's layout order: dtype descending,
    /// then name ascending (bytewise). Positions, not copies: a file may hold a million tensors.
    public static func layoutOrder<C: RandomAccessCollection<(String, DType)>>(_ tensors: C) -> [Int] where C.Index == Int {
        tensors.indices.sorted { i, j in
            let (a, b) = (tensors[i], tensors[j])
            if a.1 != b.1 { return a.1 > b.1 }
            return a.0.utf8Precedes(b.0)
        }
    }

    /// The header bytes (length prefix included) for entries already in layout order.
    public static func header(for ordered: [Entry], metadata: [String: String]) -> [UInt8] {
        header(for: ordered.lazy.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata)
    }

    /// The header bytes (length prefix included) for tensors (name, dtype, shape) already in layout order.
    public static func header(for ordered: some Sequence<(String, DType, [Int])>, metadata: [String: String]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        if !metadata.isEmpty {
            json += Array("\"__metadata__\":{".utf8)
            var firstKey = true
            for key in metadata.keys.sorted(by: { $0.utf8Precedes($1) }) {
                if !firstKey { json.append(UInt8(ascii: ",")) }
                firstKey = false
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for (name, dtype, shape) in ordered {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
            appendJSONString(name, to: &json)
            let end = offset + (checkedElementCount(shape) ?? 0) * dtype.byteSize
            json += #":{"dtype":""#.utf8
            json += dtype.rawValue.utf8
            json += #"","shape":["#.utf8
            for (i, d) in shape.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                json += d.description.utf8
            }
            json += #"],"data_offsets":["#.utf8
            json += offset.description.utf8
            json.append(UInt8(ascii: ","))
            json += end.description.utf8
            json += "]}".utf8
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        out.reserveCapacity(8 + json.count)
        out.appendLE(UInt64(json.count))
        out += json
        return out
    }

    /// Writes a complete safetensors file to `writer` (not committed: the caller commits).
    ///
    /// - Throws: when a producer emits the wrong number of bytes, or on I/O errors.
    /// Refuses entries a safetensors file cannot hold: a duplicate or reserved (`__metadata__`) name, or
    /// a shape whose element count overflows.
    ///
    /// - Throws: ``TaskVectorError`` with code `.malformed`, naming `file` and the tensor.
    public static func validate(_ entries: [Entry], file: String) throws {
        try validate(entries.lazy.map { ($0.name, $0.shape) }, file: file)
    }

    /// Refuses tensors (name, shape) a safetensors file cannot hold, as ``validate(_:file:)`` does.
    ///
    /// ASCII names in strictly increasing order (bytewise) cannot repeat: they are hashed only from the
    /// first name that breaks the order or is not ASCII (a merge lists a million in order). A repeat is a
    /// name canonically equivalent to an earlier one (`String`'s `==`), and only for ASCII is that the
    /// same bytes.
    public static func validate(_ tensors: some Collection<(String, [Int])>, file: String) throws {
        var seen: Set<String>?
        var previous: String?
        var position = 0
        for (name, shape) in tensors {
            if seen == nil, !name.isASCIIOnly || previous.map({ !$0.utf8Precedes(name) }) == true {
                var earlier = Set<String>()
                earlier.reserveCapacity(tensors.count)
                for (name, _) in tensors.prefix(position) { earlier.insert(name) }
                seen = earlier
            }
            previous = name
            position += 1
            guard name != "__metadata__", seen?.insert(name).inserted ?? true else {
                throw TaskVectorError(.malformed, file: file, tensor: name, "duplicate or reserved tensor name")
            }
            guard checkedElementCount(shape) != nil else {
                throw TaskVectorError(.malformed, file: file, tensor: name, "invalid shape \(shape)")
            }
        }
    }

    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to writer: AtomicFileWriter) throws {
        try write(entries.lazy.map { ($0.name, $0.dtype, $0.shape) }, metadata: metadata, to: writer) { i, sink in
            try entries[i].produce(sink)
        }
    }

    /// Writes a complete safetensors file of `tensors` (name, dtype, shape) to `writer` (not committed),
    /// as ``write(_:metadata:to:)`` does, with one producer for all of them: `produce(i, sink)` streams
    /// exactly the bytes of `tensors[i]`. No closure or copy per tensor (a file may hold a million).
    public static func write<C: RandomAccessCollection<(String, DType, [Int])>>(
        _ tensors: C, metadata: [String: String] = [:], to writer: AtomicFileWriter,
        produce: (Int, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws where C.Index == Int {
        try validate(tensors.lazy.map { ($0.0, $0.2) }, file: writer.path)
        let order = layoutOrder(tensors.lazy.map { ($0.0, $0.1) })
        try writer.write(header(for: order.lazy.map { tensors[$0] }, metadata: metadata))
        for i in order {
            let (name, dtype, shape) = tensors[i]
            let byteCount = (checkedElementCount(shape) ?? 0) * dtype.byteSize
            var produced = 0
            try produce(i) { chunk in
                produced += chunk.count
                try writer.write(chunk)
            }
            guard produced == byteCount else {
                throw TaskVectorError(.malformed, file: writer.path, tensor: name,
                                      "internal: produced \(produced) bytes, expected \(byteCount)")
            }
        }
    }
}

/// Appends a JSON string literal escaped as serde_json does (short escapes for `"` `\` and
/// `\b\f\n\r\t`, `\u00XX` for other control characters, everything else as raw UTF-8).
package func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    for byte in s.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out += [0x5C, 0x22]
        case UInt8(ascii: "\\"): out += [0x5C, 0x5C]
        case 0x08: out += [0x5C, UInt8(ascii: "b")]
        case 0x0C: out += [0x5C, UInt8(ascii: "f")]
        case 0x0A: out += [0x5C, UInt8(ascii: "n")]
        case 0x0D: out += [0x5C, UInt8(ascii: "r")]
        case 0x09: out += [0x5C, UInt8(ascii: "t")]
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}
