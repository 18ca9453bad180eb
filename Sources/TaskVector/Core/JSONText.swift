import Foundation

/// JSON text of a report (`[String: Any]` of strings, numbers, booleans, arrays and objects), byte for
/// byte what `JSONSerialization.data(withJSONObject:options: [.sortedKeys, .withoutEscapingSlashes])`
/// writes (with `.prettyPrinted` when `pretty`), at a small fraction of its cost.
///
/// `JSONSerialization` sorts every object's keys with a localized `NSString` comparison and bridges
/// every value: for a report of a million tensors that is most of a `--json` run. Here each distinct set
/// of keys is sorted once with that same comparison (the order is the same, so the text is), and values
/// are written straight from their Swift types. `JSONTextTests` compares the two on random reports.
package enum JSONText {
    /// The text of `value`.
    ///
    /// - Precondition: `value` holds only `String`, `Bool`, fixed-width integers, finite `Float` and
    ///   `Double`, `NSNull`, arrays (and ``Elements``) and `String`-keyed dictionaries of these.
    package static func serialize(_ value: Any, pretty: Bool) -> String {
        var writer = Writer(pretty: pretty)
        writer.value(value)
        return String(decoding: writer.out, as: UTF8.self)
    }

    /// Writes the text of `value` to `sink` in pieces of about a MiB, as it is made: a report of a
    /// million tensors is never held whole (with ``Elements`` for its long arrays, nor is its tree).
    package static func write(_ value: Any, pretty: Bool, to sink: (UnsafeRawBufferPointer) -> Void) {
        withoutActuallyEscaping(sink) { sink in
            var writer = Writer(pretty: pretty)
            writer.sink = sink
            writer.value(value)
            writer.flush()
        }
    }

    /// An array whose elements are made one at a time as the text is written (by ``write(_:pretty:to:)``
    /// or ``serialize(_:pretty:)``), so that they are never all in memory together.
    package struct Elements {
        package var count: Int
        package var element: (Int) -> Any

        package init(count: Int, element: @escaping (Int) -> Any) {
            self.count = count
            self.element = element
        }
    }

    private struct Writer {
        let pretty: Bool
        var out: [UInt8] = []
        /// Where full pieces of ``out`` go; `nil`: it is kept whole.
        var sink: ((UnsafeRawBufferPointer) -> Void)?
        var indent = 0
        /// Foundation's key order for each set of keys seen (keyed by the keys in byte order).
        var orders: [[String]: [String]] = [:]

        init(pretty: Bool) { self.pretty = pretty }

        mutating func value(_ value: Any?) {
            guard let value else { return append("null") }
            switch value {
            case let s as String: string(s)
            case let b as Bool: append(b ? "true" : "false")
            case let n as Int: append(n.description)
            case let d as Double: float(d)
            case let o as [String: Any]: object(o)
            case let a as [Any]: array(a)
            case let a as Elements: array(count: a.count, a.element)
            case let f as Float: float(f)
            case let n as Int64: append(n.description)
            case let n as UInt64: append(n.description)
            case let n as Int32: append(n.description)
            case let n as UInt32: append(n.description)
            case let n as UInt: append(n.description)
            case let n as Int16: append(n.description)
            case let n as UInt16: append(n.description)
            case let n as Int8: append(n.description)
            case let n as UInt8: append(n.description)
            case is NSNull: append("null")
            default: preconditionFailure("JSONText cannot write a \(type(of: value))")
            }
        }

        mutating func append(_ s: String) { out.append(contentsOf: s.utf8) }

        mutating func float<T: BinaryFloatingPoint & LosslessStringConvertible>(_ x: T) {
            precondition(x.isFinite, "JSON has no \(x)")
            var s = x.description
            if s.hasSuffix(".0") { s.removeLast(2) }
            append(s)
        }

        mutating func string(_ s: String) {
            out.append(UInt8(ascii: "\""))
            if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                out.append(contentsOf: s.utf8)
            } else {
                for byte in s.utf8 {
                    switch byte {
                    case UInt8(ascii: "\""): append("\\\"")
                    case UInt8(ascii: "\\"): append("\\\\")
                    case 0x08: append("\\b")
                    case 0x0C: append("\\f")
                    case 0x0A: append("\\n")
                    case 0x0D: append("\\r")
                    case 0x09: append("\\t")
                    case 0x00..<0x10: append("\\u000" + String(byte, radix: 16))
                    case 0x10..<0x20: append("\\u00" + String(byte, radix: 16))
                    default: out.append(byte)
                    }
                }
            }
            out.append(UInt8(ascii: "\""))
        }

        mutating func newline() {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
        }

        /// Hands ``out`` to the sink, if there is one.
        mutating func flush() {
            guard let sink else { return }
            out.withUnsafeBytes(sink)
            out.removeAll(keepingCapacity: true)
        }

        mutating func array(_ a: [Any]) {
            array(count: a.count) { a[$0] }
        }

        mutating func array(count: Int, _ element: (Int) -> Any) {
            out.append(UInt8(ascii: "["))
            if pretty { indent += 2 }
            if pretty && count == 0 { out.append(0x0A) }
            for i in 0..<count {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline() }
                value(element(i))
                if sink != nil, out.count >= 1 << 20 { flush() }
            }
            if pretty {
                indent -= 2
                newline()
            }
            out.append(UInt8(ascii: "]"))
        }

        mutating func object(_ o: [String: Any]) {
            out.append(UInt8(ascii: "{"))
            if pretty { indent += 2 }
            if pretty && o.isEmpty { out.append(0x0A) }
            for (i, key) in sortedKeys(o).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline() }
                string(key)
                append(pretty ? " : " : ":")
                value(o[key]!)
            }
            if pretty {
                indent -= 2
                newline()
            }
            out.append(UInt8(ascii: "}"))
        }

        /// The keys in `JSONSerialization`'s `.sortedKeys` order.
        mutating func sortedKeys(_ o: [String: Any]) -> [String] {
            let bytewise = o.keys.sorted { $0.utf8Precedes($1) }
            guard bytewise.count <= 64 else { return bytewise.sorted(by: Self.foundationOrder) }
            if let known = orders[bytewise] { return known }
            let order = bytewise.sorted(by: Self.foundationOrder)
            orders[bytewise] = order
            return order
        }

        /// The comparison `JSONSerialization` sorts keys with.
        static func foundationOrder(_ a: String, _ b: String) -> Bool {
            a.compare(b, options: [.numeric, .caseInsensitive, .forcedOrdering], range: a.startIndex..<a.endIndex,
                      locale: NSLocale.system) == .orderedAscending
        }
    }
}
