import Fixtures
import Foundation
import TaskVector
import Testing

/// What `Fixtures/make_format_fixtures.py` recorded in `formats/expected.json` for one tensor.
struct ExpectedTensor: Decodable {
    var dtype: String
    var shape: [Int]
    var values: [ExpectedNumber]?
    var sum: Double?
    var sumOfSquares: Double?
}

/// A JSON number kept exactly: integers as `Int64`/`UInt64`, floats as `Double`, and the spellings
/// "nan", "inf", "-inf" that JSON cannot hold.
enum ExpectedNumber: Decodable, Equatable {
    case int(Int64)
    case uint(UInt64)
    case double(Double)

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            switch s {
            case "nan": self = .double(.nan)
            case "inf": self = .double(.infinity)
            case "-inf": self = .double(-.infinity)
            default: throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown spelling \(s)")
            }
            return
        }
        // An integer decoder may also accept "-0.0" as 0: keep the integer only when the double agrees.
        let d = try? c.decode(Double.self)
        if let i = try? c.decode(Int64.self), d == nil || Double(i).bitPattern == d!.bitPattern {
            self = .int(i)
        } else if let u = try? c.decode(UInt64.self), d == nil || Double(u).bitPattern == d!.bitPattern {
            self = .uint(u)
        } else {
            self = .double(try c.decode(Double.self))
        }
    }

    var double: Double {
        switch self {
        case .int(let i): Double(i)
        case .uint(let u): Double(u)
        case .double(let d): d
        }
    }
}

enum FormatFixtures {
    /// `formats/expected.json`: file name → tensor name → expectation.
    static let expected: [String: [String: ExpectedTensor]] = {
        let url = URL(fileURLWithPath: Fixtures.path("formats/expected.json"))
        do {
            return try JSONDecoder().decode([String: [String: ExpectedTensor]].self, from: Data(contentsOf: url))
        } catch {
            Issue.record("cannot load \(url.path): \(error)")
            return [:]
        }
    }()

    static func path(_ name: String) -> String { Fixtures.path("formats/" + name) }

    /// A fresh empty folder under the system temporary folder, removed by the caller.
    static func temporaryFolder() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("compeft-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }
}

/// The values of a tensor, each widened exactly: floats to `Double`, integers kept as integers.
func exactValues(_ tensor: LoadedTensor) -> [ExpectedNumber] {
    let data = tensor.data
    let bytes = data.bytes
    return (0..<data.count).map { i in
        switch data.dtype {
        case .f32: .double(Double(Float(bitPattern: bytes.readLE(UInt32.self, at: i * 4)!)))
        case .f64: .double(Double(bitPattern: bytes.readLE(UInt64.self, at: i * 8)!))
        case .f16: .double(Double(FloatConversion.float(fromF16: bytes.readLE(UInt16.self, at: i * 2)!)))
        case .bf16: .double(Double(FloatConversion.float(fromBF16: bytes.readLE(UInt16.self, at: i * 2)!)))
        case .i8: .int(Int64(Int8(bitPattern: bytes[i])))
        case .u8, .bool: .int(Int64(bytes[i]))
        case .i16: .int(Int64(bytes.readLE(Int16.self, at: i * 2)!))
        case .u16: .int(Int64(bytes.readLE(UInt16.self, at: i * 2)!))
        case .i32: .int(Int64(bytes.readLE(Int32.self, at: i * 4)!))
        case .u32: .int(Int64(bytes.readLE(UInt32.self, at: i * 4)!))
        case .i64: .int(bytes.readLE(Int64.self, at: i * 8)!)
        case .u64:
            bytes.readLE(UInt64.self, at: i * 8)!.magnitude <= UInt64(Int64.max)
                ? .int(Int64(bytes.readLE(UInt64.self, at: i * 8)!)) : .uint(bytes.readLE(UInt64.self, at: i * 8)!)
        case .f8e4m3, .f8e5m2: .int(Int64(bytes[i]))
        }
    }
}

/// Whether two numbers are the same value, bit for bit: `-0.0 ≠ 0.0`, NaN equals NaN.
func sameValue(_ a: ExpectedNumber, _ b: ExpectedNumber) -> Bool {
    switch (a, b) {
    case (.double, _), (_, .double):
        let x = a.double
        let y = b.double
        return (x.isNaN && y.isNaN) || x.bitPattern == y.bitPattern
    default:
        return a == b
    }
}

/// Checks `tensors` against everything expected.json records for `file`: the same names, and for
/// each its dtype, shape and values (exactly), or sum and sum of squares (to 1e-12 relative).
func expectMatchesFixture(_ tensors: [LoadedTensor], file: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let expected = FormatFixtures.expected[file] else {
        Issue.record("expected.json has no entry for \(file)", sourceLocation: sourceLocation)
        return
    }
    #expect(Set(tensors.map(\.name)) == Set(expected.keys), sourceLocation: sourceLocation)
    #expect(tensors.count == Set(tensors.map(\.name)).count, "duplicate names", sourceLocation: sourceLocation)
    for tensor in tensors {
        guard let want = expected[tensor.name] else { continue }
        #expect(tensor.dtype.rawValue == want.dtype, "\(tensor.name)", sourceLocation: sourceLocation)
        #expect(tensor.data.dtype == tensor.dtype, "\(tensor.name)", sourceLocation: sourceLocation)
        #expect(tensor.shape == want.shape, "\(tensor.name)", sourceLocation: sourceLocation)
        let got = exactValues(tensor)
        if let values = want.values {
            #expect(got.count == values.count, "\(tensor.name)", sourceLocation: sourceLocation)
            let mismatches = zip(got, values).enumerated().filter { !sameValue($0.element.0, $0.element.1) }
            #expect(
                mismatches.isEmpty,
                "\(tensor.name): first mismatches \(mismatches.prefix(3).map { "[\($0.offset)] \($0.element.0) vs \($0.element.1)" })",
                sourceLocation: sourceLocation)
        } else if let sum = want.sum, let squares = want.sumOfSquares {
            let doubles = got.map(\.double)
            let gotSum = doubles.reduce(0, +)
            let gotSquares = doubles.reduce(0) { $0 + $1 * $1 }
            #expect(abs(gotSum - sum) <= 1e-12 * max(1, squares), "\(tensor.name) sum", sourceLocation: sourceLocation)
            #expect(abs(gotSquares - squares) <= 1e-12 * squares, "\(tensor.name) Σx²", sourceLocation: sourceLocation)
        } else {
            Issue.record(
                "expected.json entry for \(tensor.name) has neither values nor sums", sourceLocation: sourceLocation)
        }
    }
}

/// Runs `body`, which must throw a ``TaskVectorError``, and returns that error (or records an issue).
func expectTaskVectorError(
    _ code: TaskVectorError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> TaskVectorError? {
    do {
        try body()
        Issue.record("expected a TaskVectorError(.\(code)), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as TaskVectorError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a TaskVectorError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
