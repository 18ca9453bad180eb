@_exported import CompeftTestSupport
import Fixtures
import Foundation
import TaskVector
import Testing

/// The files written by `Fixtures/make_merge_fixtures.py`, read back.
struct MergeFixtures {
    let file: SafeTensorsFile

    init(_ name: String) throws {
        file = try SafeTensorsFile(path: Fixtures.path("merge/\(name).safetensors"))
    }

    func floats(_ name: String) throws -> [Float] {
        let info = try #require(file.info(name), "fixture tensor \(name) missing")
        let data = file.data(of: info)
        return [Float](unsafeUninitializedCapacity: data.count) { out, n in
            data.loadFloats(from: 0, into: out)
            n = data.count
        }
    }

    func doubles(_ name: String) throws -> [Double] {
        let info = try #require(file.info(name), "fixture tensor \(name) missing")
        precondition(info.dtype == .f64)
        let bytes = file.bytes(of: info)
        return (0..<(bytes.count / 8)).map { bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
    }

    func bools(_ name: String) throws -> [Bool] {
        let info = try #require(file.info(name), "fixture tensor \(name) missing")
        precondition(info.dtype == .u8)
        return file.bytes(of: info).map { $0 != 0 }
    }

    func shape(_ name: String) throws -> [Int] {
        try #require(file.info(name), "fixture tensor \(name) missing").shape
    }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("merge/\(name).json")))
        return try JSONDecoder().decode(T.self, from: data)
    }
}

/// One case of `dense.json`.
struct DenseCase: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let method: String
    let shape: [Int]
    let inputs: [String]
    let weights: [Float]
    let output: String
    let density: Double?
    let majority_sign_method: String?
    let masks: [String]?

    var testDescription: String {
        var s = "\(name) \(method) \(shape)"
        if let density { s += " density \(density)" }
        if let majority_sign_method { s += " \(majority_sign_method)" }
        return s + " weights \(weights)"
    }

    static func all() throws -> [DenseCase] {
        struct File: Decodable { let cases: [DenseCase] }
        return try MergeFixtures.json("dense", as: File.self).cases
    }
}

/// Whether `actual` is within `absolute + relative·|expected|` of `expected`, element by element.
func allClose(_ actual: [Float], _ expected: [Float], relative: Float = 1e-5, absolute: Float = 1e-6) -> Bool {
    actual.count == expected.count
        && zip(actual, expected).allSatisfy { a, e in (a - e).magnitude <= absolute + relative * e.magnitude }
}

/// A repeatable generator for test data (SplitMix64), so a failing seed can be replayed.
typealias SeededGenerator = SplitMix64

extension SplitMix64 {
    /// Standard normal values (Box–Muller), as `Float`.
    mutating func normals(_ count: Int) -> [Float] {
        (0..<count).map { _ in
            let u = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &self)
            let v = Double.random(in: 0..<1, using: &self)
            return Float((-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v))
        }
    }
}
