// swift-tools-version: 6.1
import PackageDescription

// A package of its own so that the product never depends on benchmark code. Run from the repository root:
//   swift run -c release --package-path Benchmarks/MergeBenchmark MergeBenchmark
// SwiftPM names a path dependency after its folder, which is not always "compeft" (a git worktree,
// a CI checkout): take the name from the folder two levels up.
let compeft = Context.packageDirectory.split(separator: "/").dropLast(2).last.map(String.init) ?? "compeft"

let package = Package(
    name: "MergeBenchmark",
    dependencies: [
        .package(path: "../.."),
    ],
    targets: [
        // MARK: - Benchmarks
        .executableTarget(
            name: "MergeBenchmark",
            dependencies: [
                .product(name: "Quantize", package: compeft),
                .product(name: "TaskVector", package: compeft),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
