import Foundation

/// Explains why a JSON text did not decode, naming the field.
///
/// Foundation's `JSONDecoder` reports a number that does not fit its field (an offset of 2⁶⁴, a count
/// of 1.5) as "The given data was not valid JSON", with no field; `JSONSerialization` refuses a
/// number beyond the range of `Double` (1e400) the same way. ``explain(_:in:as:)`` finds the field:
/// it scans the text for its number literals (with their paths, in document order), and finds the
/// first literal whose replacement by `0` lets the decoding get past it (a binary search over the
/// literals, so O(log n) decodings, only ever on the error path).
package enum JSONDiagnosis {
    /// One number literal: where it is and how it is written.
    struct Literal {
        var path: String
        var text: String
        var range: Range<Int>
    }

    /// A readable reason `error` (thrown decoding `data` as `T`) happened: a field, a value and what is wrong.
    package static func explain<T: Decodable>(_ error: any Error, in bytes: [UInt8], as type: T.Type) -> String {
        switch error {
        case DecodingError.typeMismatch(let expected, let context):
            return "field '\(path(context.codingPath))' must be \(describe(expected))"
        case DecodingError.valueNotFound(let expected, let context):
            return "field '\(path(context.codingPath))' must be \(describe(expected)), not null"
        case DecodingError.keyNotFound(let key, let context):
            return "field '\(path(context.codingPath + [key]))' is missing"
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            return "field '\(path(context.codingPath))': \(context.debugDescription)"
        default:
            break
        }
        guard let literals = scanNumbers(bytes) else { return "not valid JSON: \(error)" }
        // Decodes with literals k..< zeroed: true when what remains (literals ..<k) decodes.
        func decodes(keeping k: Int) -> Bool {
            var spliced: [UInt8] = []
            spliced.reserveCapacity(bytes.count)
            var cursor = 0
            for literal in literals[k...] {
                spliced += bytes[cursor..<literal.range.lowerBound]
                spliced.append(UInt8(ascii: "0"))
                cursor = literal.range.upperBound
            }
            spliced += bytes[cursor...]
            do {
                _ = try JSONDecoder().decode(T.self, from: Data(spliced))
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                return false
            } catch {
                return true  // it got past the numbers, to another problem
            }
            return true
        }
        guard !literals.isEmpty, decodes(keeping: 0) else { return "not valid JSON: \(error)" }
        // Invariant: decodes(keeping: low) and !decodes(keeping: high) (the original text fails).
        var low = 0
        var high = literals.count
        while high - low > 1 {
            let mid = (low + high) / 2
            if decodes(keeping: mid) { low = mid } else { high = mid }
        }
        let culprit = literals[low]
        return "field '\(culprit.path)' is \(culprit.text), \(problem(with: culprit.text))"
    }

    /// Why `JSONSerialization` could not parse `data`, when the reason is a number beyond the range of
    /// `Double`: the field and the literal; `nil` for any other reason.
    package static func explainUnparsable(_ bytes: [UInt8]) -> String? {
        guard let literals = scanNumbers(bytes) else { return nil }
        for literal in literals {
            if let value = Double(literal.text), !value.isFinite {
                return "field '\(literal.path)' is \(literal.text), \(problem(with: literal.text))"
            }
        }
        return nil
    }

    /// Why a number literal did not fit.
    static func problem(with literal: String) -> String {
        let isInteger = !literal.contains { $0 == "." || $0 == "e" || $0 == "E" }
        if isInteger {
            if Int64(literal) != nil { return "which this field does not accept" }
            if UInt64(literal) != nil { return "out of range (the largest accepted is \(Int64.max))" }
            return "out of range: too large for 64 bits"
        }
        if let value = Double(literal), !value.isFinite { return "out of range: too large for a 64-bit float" }
        return "which this field does not accept (it needs an integer)"
    }

    static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return out.isEmpty ? "(top level)" : out
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is UInt64.Type, is UInt32.Type, is UInt.Type: "a non-negative integer"
        case is Double.Type, is Float.Type: "a number"
        default: "of another type"
        }
    }

    // MARK: - Scanning

    /// Every number literal of `bytes`, with its path, in document order; `nil` when the text is not
    /// well-formed JSON (or nests deeper than 512 levels).
    static func scanNumbers(_ bytes: [UInt8]) -> [Literal]? {
        var scanner = Scanner(bytes: bytes)
        scanner.skipSpace()
        guard scanner.value(path: "", depth: 0) else { return nil }
        scanner.skipSpace()
        return scanner.position == bytes.count ? scanner.literals : nil
    }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        var literals: [Literal] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
        }

        mutating func expect(_ c: UInt8) -> Bool {
            guard current == c else { return false }
            position += 1
            return true
        }

        mutating func value(path: String, depth: Int) -> Bool {
            guard depth < 512, let c = current else { return false }
            switch c {
            case UInt8(ascii: "{"):
                position += 1
                skipSpace()
                if expect(UInt8(ascii: "}")) { return true }
                while true {
                    skipSpace()
                    guard let key = string() else { return false }
                    skipSpace()
                    guard expect(UInt8(ascii: ":")) else { return false }
                    skipSpace()
                    guard value(path: path.isEmpty ? key : path + "." + key, depth: depth + 1) else { return false }
                    skipSpace()
                    if expect(UInt8(ascii: "}")) { return true }
                    guard expect(UInt8(ascii: ",")) else { return false }
                }
            case UInt8(ascii: "["):
                position += 1
                skipSpace()
                if expect(UInt8(ascii: "]")) { return true }
                var index = 0
                while true {
                    skipSpace()
                    guard value(path: path + "[\(index)]", depth: depth + 1) else { return false }
                    index += 1
                    skipSpace()
                    if expect(UInt8(ascii: "]")) { return true }
                    guard expect(UInt8(ascii: ",")) else { return false }
                }
            case UInt8(ascii: "\""):
                return string() != nil
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = position
                while let d = current, d == UInt8(ascii: "-") || d == UInt8(ascii: "+") || d == UInt8(ascii: ".")
                    || d == UInt8(ascii: "e") || d == UInt8(ascii: "E") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d)
                {
                    position += 1
                }
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                literals.append(Literal(path: path.isEmpty ? "(top level)" : path, text: text, range: start..<position))
                return true
            default:
                for word in ["true", "false", "null"] where bytes[position...].starts(with: word.utf8) {
                    position += word.utf8.count
                    return true
                }
                return false
            }
        }

        /// A string at `position` (escapes decoded well enough to name a key), or nil.
        mutating func string() -> String? {
            guard expect(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while let c = current {
                position += 1
                if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                if c == UInt8(ascii: "\\") {
                    guard let e = current else { return nil }
                    position += 1
                    if e == UInt8(ascii: "u") {
                        guard position + 4 <= bytes.count else { return nil }
                        position += 4
                        out.append(UInt8(ascii: "?"))
                    } else {
                        out.append(e)
                    }
                } else {
                    out.append(c)
                }
            }
            return nil
        }
    }
}
