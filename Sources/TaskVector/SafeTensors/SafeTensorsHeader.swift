/// The JSON of a safetensors header, read entry by entry.
///
/// A header of a million tensors is tens of megabytes of JSON; Foundation's `JSONSerialization` turns
/// it into a tree of bridged objects (several kilobytes and microseconds per tensor). This reader walks
/// the text once and hands each top-level entry to the caller as a small ``Value`` that is dropped
/// before the next, so the cost per tensor is its ``TensorInfo``. It accepts exactly RFC 8259 JSON
/// (UTF-8, no comments, no trailing commas), and refuses values nested more than ``maxDepth`` deep.
struct SafeTensorsHeader {
    /// A JSON value. Numbers keep their text; an integer that fits `Int` is also given as one.
    enum Value {
        case string(String)
        case number(text: String, integer: Int?)
        case bool(Bool)
        case null
        case array([Value])
        case object([(key: String, value: Value)])

        /// How the value reads in an error message (numbers as written).
        var shown: String {
            switch self {
            case .string(let s): return "\"\(s)\""
            case .number(let text, _): return text
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            case .array(let items): return "[" + items.map(\.shown).joined(separator: ", ") + "]"
            case .object(let pairs): return "{" + pairs.map { "\"\($0.key)\": \($0.value.shown)" }.joined(separator: ", ") + "}"
            }
        }

        /// The value of `key` in an object (the last, if the key repeats).
        subscript(key: String) -> Value? {
            guard case .object(let pairs) = self else { return nil }
            return pairs.last { $0.key == key }?.value
        }
    }

    /// A syntax error, with the byte offset where it was found.
    struct SyntaxError: Error {
        var offset: Int
        var message: String
    }

    /// The deepest nesting of arrays and objects accepted.
    static let maxDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var p = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Calls `body` with each key and value of the top-level object, in order.
    ///
    /// - Throws: ``SyntaxError`` for text that is not one JSON object (only whitespace may follow it),
    ///   and what `body` throws.
    mutating func forEachEntry(_ body: (String, Value) throws -> Void) throws {
        skipWhitespace()
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            p += 1
        } else {
            while true {
                skipWhitespace()
                let key = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                let v = try value(depth: 1)
                try body(key, v)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { p += 1; continue }
                try expect(UInt8(ascii: "}"))
                break
            }
        }
        skipWhitespace()
        guard p == bytes.count else { throw SyntaxError(offset: p, message: "text follows the header's object") }
    }

    private func peek() -> UInt8? { p < bytes.count ? bytes[p] : nil }

    private mutating func skipWhitespace() {
        while p < bytes.count, bytes[p] == 0x20 || bytes[p] == 0x0A || bytes[p] == 0x0D || bytes[p] == 0x09 { p += 1 }
    }

    private mutating func expect(_ c: UInt8) throws {
        guard peek() == c else {
            throw SyntaxError(offset: p, message: "expected '\(Character(UnicodeScalar(c)))'")
        }
        p += 1
    }

    private mutating func value(depth: Int) throws -> Value {
        skipWhitespace()
        guard let c = peek() else { throw SyntaxError(offset: p, message: "the header ends inside a value") }
        switch c {
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < Self.maxDepth else {
                throw SyntaxError(offset: p, message: "values nest more than \(Self.maxDepth) deep")
            }
            p += 1
            let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            var pairs: [(key: String, value: Value)] = []
            var items: [Value] = []
            skipWhitespace()
            if peek() == close {
                p += 1
            } else {
                while true {
                    if c == UInt8(ascii: "{") {
                        skipWhitespace()
                        let key = try string()
                        skipWhitespace()
                        try expect(UInt8(ascii: ":"))
                        pairs.append((key, try value(depth: depth + 1)))
                    } else {
                        items.append(try value(depth: depth + 1))
                    }
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { p += 1; continue }
                    try expect(close)
                    break
                }
            }
            return c == UInt8(ascii: "{") ? .object(pairs) : .array(items)
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return try number()
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard p + n <= bytes.count, (0..<n).allSatisfy({ bytes[p + $0] == word.utf8Start[$0] }) else {
            throw SyntaxError(offset: p, message: "unexpected character")
        }
        p += n
    }

    private mutating func number() throws -> Value {
        let start = p
        func digits() -> Int {
            let from = p
            while p < bytes.count, bytes[p] >= 0x30, bytes[p] <= 0x39 { p += 1 }
            return p - from
        }
        if peek() == UInt8(ascii: "-") { p += 1 }
        let intStart = p
        let intDigits = digits()
        guard intDigits > 0 else { throw SyntaxError(offset: start, message: "unexpected character") }
        guard intDigits == 1 || bytes[intStart] != 0x30 else { throw SyntaxError(offset: start, message: "a number has a leading zero") }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            p += 1
            guard digits() > 0 else { throw SyntaxError(offset: p, message: "a number has no digits after '.'") }
            isInteger = false
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            p += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { p += 1 }
            guard digits() > 0 else { throw SyntaxError(offset: p, message: "a number has no digits in its exponent") }
            isInteger = false
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<p]), as: UTF8.self)
        return .number(text: text, integer: isInteger ? Int(text) : nil)
    }

    private mutating func string() throws -> String {
        guard peek() == UInt8(ascii: "\"") else { throw SyntaxError(offset: p, message: "expected a string") }
        p += 1
        let start = p
        var plain = true
        var ascii = true
        while p < bytes.count {
            let c = bytes[p]
            if c == UInt8(ascii: "\"") { break }
            if c >= 0x80 { ascii = false }
            if c < 0x20 { throw SyntaxError(offset: p, message: "a control character inside a string") }
            if c == UInt8(ascii: "\\") {
                plain = false
                p += 2
            } else {
                p += 1
            }
        }
        guard p < bytes.count else { throw SyntaxError(offset: start, message: "a string is not terminated") }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<p])
        p += 1
        if plain && ascii {
            // ASCII is valid UTF-8: decoding it is the same string, without the generic validation (this
            // runs for every name and key of a header that may list a million tensors).
            return String(decoding: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
        }
        if plain {
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw SyntaxError(offset: start, message: "a string is not valid UTF-8")
            }
            return s
        }
        return try unescape(raw, at: start)
    }

    /// The text of a string with escapes, checked: valid UTF-8, known escapes, paired surrogates.
    private func unescape(_ raw: UnsafeRawBufferPointer, at offset: Int) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= raw.count else { throw SyntaxError(offset: offset + at, message: "a \\u escape is cut short") }
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = raw[at + k]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: throw SyntaxError(offset: offset + at, message: "a \\u escape is not four hex digits")
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < raw.count {
            let c = raw[i]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < raw.count else { throw SyntaxError(offset: offset + i, message: "a string ends in '\\'") }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u"),
                        case let low = try hex4(i + 2), (0xDC00..<0xE000).contains(low)
                    else { throw SyntaxError(offset: offset + i, message: "a \\u escape is an unpaired surrogate") }
                    scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
                    i += 6
                }
                guard let u = UnicodeScalar(scalar) else {
                    throw SyntaxError(offset: offset + i, message: "a \\u escape is an unpaired surrogate")
                }
                out += Array(String(Character(u)).utf8)
            default:
                throw SyntaxError(offset: offset + i - 1, message: "unknown escape '\\\(Character(UnicodeScalar(e)))'")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw SyntaxError(offset: offset, message: "a string is not valid UTF-8")
        }
        return s
    }
}
