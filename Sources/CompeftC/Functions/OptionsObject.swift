import Commands
import Foundation
import TaskVector

/// The `options_json` argument of `compeft_compress`, `compeft_decompress` and `compeft_merge`: a JSON
/// object whose keys are the command line's long options in snake_case (`"density"`, `"zstd_level"`).
///
/// NULL or `""` is the empty object. A key the function does not know, or a value of the wrong type, is
/// INVALID_ARGUMENT naming it: a typo must not be ignored.
struct OptionsObject {
    /// One JSON value, decoded without Foundation's number bridging (so `true` is never `1`).
    enum Value: Decodable {
        case null
        case bool(Bool)
        case integer(Int64)
        case unsigned(UInt64)
        case number(Double)
        case string(String)
        case array([Value])
        case object([String: Value])

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .integer(i) }
            else if let u = try? c.decode(UInt64.self) { self = .unsigned(u) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([Value].self) { self = .array(a) }
            else { self = .object(try c.decode([String: Value].self)) }
        }

        var number: Double? {
            switch self {
            case .integer(let i): Double(i)
            case .unsigned(let u): Double(u)
            case .number(let d): d
            default: nil
            }
        }
    }

    let function: String
    private let values: [String: Value]

    /// Parses `text` and checks its keys against `known`.
    init(_ text: UnsafePointer<CChar>?, function: String, known: Set<String>) throws(ABIError) {
        self.function = function
        guard let text, text.pointee != 0 else {
            values = [:]
            return
        }
        let bytes = Data(bytes: text, count: strlen(text))
        guard let parsed = try? JSONDecoder().decode(Value.self, from: bytes), case .object(let object) = parsed else {
            throw .invalidArgument("\(function): options_json must be a JSON object, got '\(String(decoding: bytes.prefix(200), as: UTF8.self))'")
        }
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalidArgument("\(function): unknown option '\(unknown)'; known options: \(known.sorted().joined(separator: ", "))")
        }
        values = object.filter { if case .null = $0.value { false } else { true } }
    }

    private func wrongType(_ key: String, _ expected: String) -> ABIError {
        .invalidArgument("\(function): option '\(key)' must be \(expected)")
    }

    func double(_ key: String) throws(ABIError) -> Double? {
        guard let v = values[key] else { return nil }
        guard let d = v.number, d.isFinite else { throw wrongType(key, "a finite number") }
        return d
    }

    /// A density in percent, in (0, 100].
    func density(_ key: String) throws(ABIError) -> Density? {
        guard let percent = try double(key) else { return nil }
        do { return try Density(percent: percent) } catch { throw .invalidArgument("\(function): \(key): \(error)") }
    }

    /// One of a setting's names (``SettingName``), such as `"method": "ties"`.
    func named<T: SettingName>(_ key: String, _ type: T.Type) throws(ABIError) -> T? {
        guard let text = try string(key) else { return nil }
        do { return try T.named(text, for: key) } catch { throw .invalidArgument("\(function): \(error.message(.key))") }
    }

    func int(_ key: String) throws(ABIError) -> Int? {
        guard let v = values[key] else { return nil }
        guard case .integer(let i) = v, let n = Int(exactly: i) else { throw wrongType(key, "an integer") }
        return n
    }

    func uint64(_ key: String) throws(ABIError) -> UInt64? {
        switch values[key] {
        case nil: return nil
        case .integer(let i) where i >= 0: return UInt64(i)
        case .unsigned(let u): return u
        default: throw wrongType(key, "an integer ≥ 0")
        }
    }

    func bool(_ key: String) throws(ABIError) -> Bool? {
        guard let v = values[key] else { return nil }
        guard case .bool(let b) = v else { throw wrongType(key, "true or false") }
        return b
    }

    func string(_ key: String) throws(ABIError) -> String? {
        guard let v = values[key] else { return nil }
        guard case .string(let s) = v else { throw wrongType(key, "a string") }
        return s
    }

    /// A string, or a number given as one (`"alpha": 2` means `"2"`).
    func text(_ key: String) throws(ABIError) -> String? {
        guard let v = values[key] else { return nil }
        if case .string(let s) = v { return s }
        if let d = v.number { return String(d) }
        throw wrongType(key, "a string or a number")
    }

    func doubles(_ key: String) throws(ABIError) -> [Double]? {
        guard let v = values[key] else { return nil }
        guard case .array(let items) = v else { throw wrongType(key, "a list of finite numbers") }
        var out: [Double] = []
        for item in items {
            guard let d = item.number, d.isFinite else { throw wrongType(key, "a list of finite numbers") }
            out.append(d)
        }
        return out
    }
}
