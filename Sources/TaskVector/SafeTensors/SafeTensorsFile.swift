import Foundation
import Synchronization

/// A safetensors file opened for reading, validated against the spec before any tensor is touched.
///
/// The layout is an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON, then the data
/// section. Every tensor's `data_offsets` must lie inside the data section, match
/// `count × dtype size`, and the tensors must cover the data section exactly, without gaps or
/// overlaps. Headers larger than ``maxHeaderLength`` or past the end of the file are refused before
/// anything is allocated.
public struct SafeTensorsFile: Sendable {
    /// The spec's limit on the JSON header (100 MB).
    public static let maxHeaderLength = 100_000_000

    /// The most distinct shapes a file's tensors share (see ``init(file:headerLimit:)``).
    static let sharedShapeLimit = 4096

    public let file: MappedFile
    /// Tensors in the order of their data offsets.
    public let tensors: [TensorInfo]
    /// The `__metadata__` map (string to string), empty when absent.
    public let metadata: [String: String]
    /// Byte offset of the data section in the file.
    public let dataStart: Int
    /// Positions by name, made on the first ``info(_:)``: the readers that build their own lookup (a
    /// checkpoint) do not pay for this one on every tensor of a file that may hold a million.
    private let byName = LazyNameIndex()

    public var path: String { file.path }

    /// Opens and validates `path` (`-` reads standard input).
    public init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Validates a file already mapped.
    public init(file: MappedFile) throws {
        try self.init(file: file, headerLimit: Self.maxHeaderLength)
    }

    /// Validates a file already mapped, with another header limit (tests take the limit from just
    /// inside to just outside without a 100 MB file).
    init(file: MappedFile, headerLimit: Int) throws {
        self.file = file
        let bytes = file.bytes
        let path = file.path
        func fail(_ message: String, tensor: String? = nil) -> TaskVectorError {
            TaskVectorError(.malformed, file: path, tensor: tensor, "not a valid safetensors file: \(message)")
        }
        guard let rawLength = bytes.readLE(UInt64.self, at: 0) else {
            throw fail("\(bytes.count) bytes is too short for the 8-byte header length")
        }
        guard rawLength <= UInt64(headerLimit) else {
            throw fail("header length \(rawLength) exceeds the \(headerLimit == Self.maxHeaderLength ? "100 MB" : "\(headerLimit)-byte") limit")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= bytes.count - 8 else {
            throw fail("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes)")
        }
        guard headerLength >= 2 else { throw fail("header of \(headerLength) bytes cannot hold a JSON object") }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
        dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart

        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        var seen = Set<String>()
        // A shape met before is shared rather than stored again (a model has a few distinct shapes, and an
        // array per tensor is 48 bytes of a million-tensor file).
        var shapes: [[Int]: [Int]] = [:]
        var header = SafeTensorsHeader(headerBytes)
        do {
            try header.forEachEntry { name, value in
                guard seen.insert(name).inserted else {
                    throw fail("the header lists '\(name)' twice", tensor: name == "__metadata__" ? nil : name)
                }
                if name == "__metadata__" {
                    guard case .object(let map) = value else { throw fail("__metadata__ is not an object") }
                    for (key, entry) in map {
                        guard case .string(let string) = entry else {
                            throw fail("__metadata__ value for '\(key)' is not a string")
                        }
                        metadata[key] = string
                    }
                    return
                }
                guard case .object = value else { throw fail("entry is not an object", tensor: name) }
                guard case .string(let dtypeName)? = value["dtype"] else { throw fail("missing dtype", tensor: name) }
                guard let dtype = DType(rawValue: dtypeName) else {
                    throw TaskVectorError(.unsupported, file: path, tensor: name, "unsupported dtype '\(dtypeName)'")
                }
                guard case .array(let shapeValues)? = value["shape"] else { throw fail("missing shape", tensor: name) }
                var shape: [Int] = []
                shape.reserveCapacity(shapeValues.count)
                for dim in shapeValues {
                    guard let d = headerInteger(dim), d >= 0 else {
                        throw fail("shape \(Value.array(shapeValues).shown) has a dimension that is not a non-negative integer\(headerOutOfRange(dim))", tensor: name)
                    }
                    shape.append(d)
                }
                if let known = shapes[shape] {
                    shape = known
                } else if shapes.count < Self.sharedShapeLimit {
                    shapes[shape] = shape
                }
                guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2,
                    let begin = headerInteger(offsets[0]), let end = headerInteger(offsets[1])
                else {
                    var problem = ""
                    if case .array(let offsets)? = value["data_offsets"] {
                        problem = offsets.lazy.map(headerOutOfRange).first { !$0.isEmpty } ?? ""
                    }
                    throw fail("data_offsets must be two integers\(problem)", tensor: name)
                }
                guard begin >= 0, begin <= end, end <= dataLength else {
                    throw fail("data_offsets [\(begin), \(end)] lie outside the \(dataLength)-byte data section", tensor: name)
                }
                guard let count = checkedElementCount(shape),
                    case let (bytesNeeded, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize), !overflow
                else { throw fail("shape \(shape) is too large", tensor: name) }
                guard end - begin == bytesNeeded else {
                    throw fail("data_offsets span \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(bytesNeeded)", tensor: name)
                }
                tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end))
            }
        } catch let error as SafeTensorsHeader.SyntaxError {
            throw fail("header is not valid JSON: \(error.message) at byte \(8 + error.offset)")
        }
        tensors.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name) < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        var cursor = 0
        for t in tensors {
            guard t.dataRange.lowerBound == cursor else {
                if t.dataRange.lowerBound < cursor {
                    throw fail("data overlaps the previous tensor (starts at \(t.dataRange.lowerBound), previous ends at \(cursor))", tensor: t.name)
                }
                throw fail("gap in the data section before this tensor (bytes \(cursor)..<\(t.dataRange.lowerBound) unused)", tensor: t.name)
            }
            cursor = t.dataRange.upperBound
        }
        guard cursor == dataLength else {
            throw fail("data section has \(dataLength) bytes but the tensors cover \(cursor)")
        }
        // Everything the header says is parsed: its pages can go (a header of a million tensors is ~70 MB,
        // held for as long as any tensor of the file is).
        file.release(range: 8..<dataStart)
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, if present.
    ///
    /// - Complexity: O(n) for the first call on a file (its names are indexed then), O(1) after.
    public func info(_ name: String) -> TensorInfo? {
        byName.position(of: name, in: tensors).map { tensors[$0] }
    }

    /// The raw little-endian bytes of a tensor (a view into the mapped file).
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + tensor.dataRange.lowerBound)..<(dataStart + tensor.dataRange.upperBound)])
    }

    /// A typed view of a tensor's data.
    public func data(of tensor: TensorInfo) -> TensorData {
        TensorData(dtype: tensor.dtype, bytes: bytes(of: tensor), owner: file)
    }
}

private typealias Value = SafeTensorsHeader.Value

/// `" (N is out of range: …)"` for a JSON integer too large for 64 bits, else empty.
private func headerOutOfRange(_ value: Value) -> String {
    guard case .number(let text, nil) = value, !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return "" }
    return " (\(text) is out of range: too large for a 64-bit integer)"
}

/// An integer from a JSON number written without fraction or exponent, that fits `Int`.
private func headerInteger(_ value: Value) -> Int? {
    guard case .number(_, let integer?) = value else { return nil }
    return integer
}
/// `" (N is out of range: …)"` for a JSON number too large for a 64-bit integer, else empty.
func outOfRange(_ value: Any) -> String {
    guard let number = value as? NSNumber, !String(describing: type(of: value)).contains("Boolean") else { return "" }
    if number is NSDecimalNumber || (String(cString: number.objCType) == "Q" && number.uint64Value > UInt64(Int64.max)) {
        return " (\(number) is out of range: too large for a 64-bit integer)"
    }
    return ""
}

/// An integer from a JSON number, refusing fractions, negatives that overflow and non-numbers.
func jsonInteger(_ value: Any) -> Int? {
    // Foundation hands JSON booleans over as a boolean NSNumber subclass; refuse them as integers.
    if String(describing: type(of: value)).contains("Boolean") { return nil }
    if let n = value as? NSNumber, String(cString: n.objCType) == "d" { return nil }
    return value as? Int
}

/// The positions of a file's tensors by name, made once, on first use, by whichever thread asks first.
private final class LazyNameIndex: Sendable {
    private let positions = Mutex<[String: Int]?>(nil)

    func position(of name: String, in tensors: [TensorInfo]) -> Int? {
        positions.withLock { positions in
            if positions == nil {
                var index: [String: Int] = [:]
                index.reserveCapacity(tensors.count)
                for (i, t) in tensors.enumerated() { index[t.name] = i }
                positions = index
            }
            return positions![name]
        }
    }
}
