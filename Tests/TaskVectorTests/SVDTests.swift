import Foundation
import Testing
import TaskVector

/// The Jacobi SVD: against numpy on fixtures, and on matrices built to break it.
@Suite struct SVDTests {
    /// Checks U and V orthonormal, σ sorted and non-negative, and U Σ Vᵀ = A, all relative to ‖A‖.
    static func checkDecomposition(_ a: Matrix, _ svd: SVD, tolerance: Double = 1e-12,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
        let p = min(a.rows, a.cols)
        #expect(svd.u.rows == a.rows && svd.u.cols == p, sourceLocation: sourceLocation)
        #expect(svd.vt.rows == p && svd.vt.cols == a.cols, sourceLocation: sourceLocation)
        #expect(svd.singularValues.count == p, sourceLocation: sourceLocation)
        #expect(zip(svd.singularValues, svd.singularValues.dropFirst()).allSatisfy { $0 >= $1 }, sourceLocation: sourceLocation)
        #expect(svd.singularValues.allSatisfy { $0 >= 0 }, sourceLocation: sourceLocation)
        let utu = svd.u.transposed.multiplied(by: svd.u)
        let vvt = svd.vt.multiplied(by: svd.vt.transposed)
        #expect(maxDistance(utu, .identity(p)) < 1e-13 * Double(max(p, 1)) + 1e-14, "UᵀU ≠ I", sourceLocation: sourceLocation)
        #expect(maxDistance(vvt, .identity(p)) < 1e-13 * Double(max(p, 1)) + 1e-14, "VᵀV ≠ I", sourceLocation: sourceLocation)
        var us = svd.u
        for i in 0..<us.rows { for j in 0..<p { us[i, j] *= svd.singularValues[j] } }
        let back = us.multiplied(by: svd.vt)
        let norm = a.squaredNorm.squareRoot()
        let error = zip(back.elements, a.elements).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        #expect(error <= tolerance * max(norm, .leastNormalMagnitude), "‖UΣVᵀ − A‖ = \(error), ‖A‖ = \(norm)",
                sourceLocation: sourceLocation)
    }

    static func maxDistance(_ a: Matrix, _ b: Matrix) -> Double {
        zip(a.elements, b.elements).map { ($0 - $1).magnitude }.max() ?? 0
    }

    static func random(_ rows: Int, _ cols: Int, seed: UInt64) -> Matrix {
        var g = SeededGenerator(seed: seed)
        return Matrix(rows: rows, cols: cols, floats: g.normals(rows * cols))
    }

    static func orthogonal(_ n: Int, seed: UInt64) -> Matrix {
        SVD(random(n, n, seed: seed)).u
    }

    @Test(arguments: ["tall", "wide", "square", "decaying", "rank2"])
    func singularValuesMatchNumpy(_ name: String) throws {
        struct Case: Decodable { let name: String, rows: Int, cols: Int }
        struct File: Decodable { let cases: [Case] }
        let c = try #require(try MergeFixtures.json("svd", as: File.self).cases.first { $0.name == name })
        let fixtures = try MergeFixtures("svd")
        let a = Matrix(rows: c.rows, cols: c.cols, elements: try fixtures.doubles("\(name).matrix"))
        let expected = try fixtures.doubles("\(name).singular_values")
        let svd = SVD(a)
        let scale = expected[0]
        for (s, e) in zip(svd.singularValues, expected) {
            #expect((s - e).magnitude <= 1e-13 * scale, "\(name): σ \(s) vs numpy \(e)")
        }
        Self.checkDecomposition(a, svd)
    }

    @Test(arguments: [(0, 0), (0, 5), (5, 0), (1, 1), (1, 9), (9, 1), (3, 3), (4, 4)])
    func zeroMatrixHasZeroSingularValuesAndOrthonormalVectors(_ shape: (Int, Int)) {
        let a = Matrix(zeros: shape.0, shape.1)
        let svd = SVD(a)
        #expect(svd.singularValues == [Double](repeating: 0, count: min(shape.0, shape.1)))
        Self.checkDecomposition(a, svd)
        #expect(svd.discardedEnergy(keeping: 0) == 0)
    }

    @Test(arguments: [(1, 1), (1, 17), (17, 1), (6, 9), (30, 4)])
    func rankOneHasOneSingularValue(_ shape: (Int, Int)) {
        var g = SeededGenerator(seed: UInt64(shape.0 * 100 + shape.1))
        let x = g.normals(shape.0).map(Double.init)
        let y = g.normals(shape.1).map(Double.init)
        let a = Matrix(rows: shape.0, cols: shape.1, elements: x.flatMap { xi in y.map { xi * $0 } })
        let svd = SVD(a)
        let nx = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let ny = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect((svd.singularValues[0] - nx * ny).magnitude <= 1e-14 * nx * ny)
        #expect(svd.singularValues.dropFirst().allSatisfy { $0 <= 1e-14 * nx * ny })
        Self.checkDecomposition(a, svd)
    }

    @Test func repeatedSingularValuesAreFoundAndVectorsStayOrthonormal() {
        let n = 6
        let u = Self.orthogonal(n, seed: 1)
        let v = Self.orthogonal(n, seed: 2)
        let sigma: [Double] = [3, 3, 3, 1, 1, 0]
        var us = u
        for i in 0..<n { for j in 0..<n { us[i, j] *= sigma[j] } }
        let a = us.multiplied(by: v.transposed)
        let svd = SVD(a)
        for (s, e) in zip(svd.singularValues, sigma) { #expect((s - e).magnitude < 1e-13) }
        Self.checkDecomposition(a, svd)
    }

    @Test(arguments: [1e-300, 1e-160, 1e-30, 1, 1e30, 1e160, 1e300])
    func extremeScalesNeitherOverflowNorUnderflow(_ scale: Double) {
        let base = Self.random(7, 5, seed: 3)
        let reference = SVD(base).singularValues
        var a = base
        for i in a.elements.indices { a.elements[i] *= scale }
        let svd = SVD(a)
        for (s, r) in zip(svd.singularValues, reference) {
            #expect((s / scale - r).magnitude <= 1e-13 * reference[0], "scale \(scale): \(s / scale) vs \(r)")
        }
        Self.checkDecomposition(a, svd)
    }

    @Test func subnormalEntriesAreDecomposed() {
        let a = Matrix(rows: 2, cols: 2, elements: [4e-320, 0, 0, 1e-321])
        let svd = SVD(a)
        #expect(svd.singularValues == [4e-320, 1e-321])
    }

    @Test func gradedMatrixKeepsSmallSingularValuesAccurate() {
        // σ = (1, 1e-8, 1e-12) between orthogonal matrices: the small values come back within the
        // rounding of A itself (≈ ε‖A‖).
        let u = Self.orthogonal(3, seed: 4)
        let v = Self.orthogonal(3, seed: 5)
        let sigma: [Double] = [1, 1e-8, 1e-12]
        var us = u
        for i in 0..<3 { for j in 0..<3 { us[i, j] *= sigma[j] } }
        let svd = SVD(us.multiplied(by: v.transposed))
        #expect((svd.singularValues[1] - 1e-8).magnitude < 1e-15)
        #expect((svd.singularValues[2] - 1e-12).magnitude < 1e-15)
    }

    @Test(arguments: [(2, 40), (40, 2), (25, 25), (33, 17)])
    func randomMatricesDecompose(_ shape: (Int, Int)) {
        let a = Self.random(shape.0, shape.1, seed: UInt64(shape.0 &* 31 &+ shape.1))
        let svd = SVD(a)
        Self.checkDecomposition(a, svd)
        #expect(svd.sweeps < 20)
    }

    /// Sparse, with zero rows and columns at random places, as a TIES-trimmed LoRA ΔW is (one from the
    /// fixtures, 64×64 with 26% non-zeros, 11 zero rows and 7 zero columns, used to trap). Exactly zero
    /// columns leave left vectors to complete against many filled ones, and no basis vector's
    /// projection may keep a norm of 0.5; the completion must still find one.
    @Test(arguments: [(0, 10, 0.26), (8, 5, 0.2), (11, 7, 0.26), (0, 30, 0.5)], [UInt64(0), 1, 2, 3])
    func sparseMatricesWithZeroRowsAndColumnsDecompose(_ shape: (zeroRows: Int, zeroColumns: Int, density: Double),
                                                       seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        var a = Matrix(rows: 64, cols: 64, floats: g.normals(64 * 64))
        for i in 0..<64 { for j in 0..<64 where Double(g.next() % 1000) >= shape.density * 1000 { a[i, j] = 0 } }
        var rows = Array(0..<64)
        var columns = Array(0..<64)
        rows.shuffle(using: &g)
        columns.shuffle(using: &g)
        for k in rows.prefix(shape.zeroRows) { for j in 0..<64 { a[k, j] = 0 } }
        for k in columns.prefix(shape.zeroColumns) { for i in 0..<64 { a[i, k] = 0 } }
        Self.checkDecomposition(a, SVD(a))
    }

    @Test func discardedEnergyIsTheTailShare() {
        let u = Self.orthogonal(4, seed: 6)
        let v = Self.orthogonal(4, seed: 7)
        var us = u
        let sigma: [Double] = [4, 3, 2, 1]
        for i in 0..<4 { for j in 0..<4 { us[i, j] *= sigma[j] } }
        let svd = SVD(us.multiplied(by: v.transposed))
        #expect((svd.discardedEnergy(keeping: 2) - 5.0 / 30).magnitude < 1e-14)
        #expect(svd.discardedEnergy(keeping: 4) == 0)
        #expect((svd.discardedEnergy(keeping: 0) - 1).magnitude < 1e-15)
    }

    @Test func matrixHoldingNaNIsRejected() async {
        await #expect(processExitsWith: .failure) {
            _ = SVD(Matrix(rows: 1, cols: 2, elements: [1, .nan]))
        }
    }
}
