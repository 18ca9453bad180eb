// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Benchmarks",
    dependencies: [
        .package(name: "compeft", path: "..")
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(
            name: "CZstdBenchmark", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),

        // MARK: - Benchmarks
        .executableTarget(
            name: "CoderBenchmark",
            dependencies: [
                "CZstdBenchmark",
                .product(name: "Quantize", package: "compeft"),
                .product(name: "TaskVector", package: "compeft"),
                .product(name: "AdapterFormat", package: "compeft"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
