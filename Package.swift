// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "compeft",
    products: [
        .executable(name: "compeft", targets: ["compeft"]),
        // The process in which compeft reads HDF5 (a crash in libhdf5 ends it, not its caller); installed
        // beside compeft and libcompeft.
        .executable(name: "compeft-hdf5-reader", targets: ["compeft-hdf5-reader"]),
        .library(name: "TaskVector", targets: ["TaskVector"]),
        .library(name: "Quantize", targets: ["Quantize"]),
        .library(name: "AdapterFormat", targets: ["AdapterFormat"]),
        // The C ABI (include/compeft.h). SwiftPM names it libCompeftC.so: the product name "compeft" belongs
        // to the executable (a duplicate product name is ignored). scripts/build-libcompeft.sh makes libcompeft.so.
        .library(name: "CompeftC", type: .dynamic, targets: ["CompeftC"]),
        // The same, as an archive: scripts/build-python-wheel.sh links it with the Swift runtime into one
        // self-contained libcompeft.so for the Python package (python/).
        .library(name: "CompeftCStatic", type: .static, targets: ["CompeftC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Ed25519 and SHA-256 for the registry exchange (Exchange target only; the core never links it).
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // MARK: - System libraries
        .systemLibrary(
            name: "CZstd", pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),
        .systemLibrary(
            name: "CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]),
        // Our own C header, include/compeft.h, so the Swift side is checked against it.
        .systemLibrary(name: "CCompeft"),

        // MARK: - Libraries
        .target(name: "TaskVector", dependencies: ["CHDF5"], swiftSettings: strict),
        .target(name: "Quantize", dependencies: ["TaskVector"], swiftSettings: strict),
        .target(name: "AdapterFormat", dependencies: ["Quantize", "TaskVector", "CZstd"], swiftSettings: strict),

        // MARK: - Registry exchange (networking; the core libraries and the C ABI stay free of it)
        .target(
            name: "Exchange",
            dependencies: [
                "AdapterFormat", "TaskVector",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            exclude: ["README.md"], swiftSettings: strict),

        // MARK: - Front ends
        // What the command line and the C ABI share: each command's settings, checked once, how it runs,
        // and its JSON report (Sources/Commands/README.md).
        .target(
            name: "Commands", dependencies: ["AdapterFormat", "Quantize", "TaskVector"], exclude: ["README.md"],
            swiftSettings: strict),

        // MARK: - C ABI
        .target(
            name: "CompeftC", dependencies: ["Commands", "AdapterFormat", "Quantize", "TaskVector", "CCompeft"],
            exclude: ["README.md"], swiftSettings: strict),

        // MARK: - Command line
        .executableTarget(
            name: "compeft",
            dependencies: [
                "Commands", "AdapterFormat", "Exchange", "Quantize", "TaskVector",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),

        .executableTarget(name: "compeft-hdf5-reader", dependencies: ["TaskVector"], swiftSettings: strict),

        // MARK: - Examples
        .executableTarget(
            name: "compeft-example-apply", dependencies: ["AdapterFormat", "TaskVector"], path: "Examples/ApplyAdapter",
            swiftSettings: strict),

        // MARK: - Fixtures and tests
        .target(
            name: "Fixtures", path: "Fixtures",
            exclude: ["make_fixtures.py", "make_merge_fixtures.py", "make_format_fixtures.py", "reference_compeft.py",
                      "check_peft_load.py", "read_safetensors.py", "decode_gap.py", "reference_lora_rule.py", "README.md"],
            resources: [.copy("files")], swiftSettings: strict),
        .target(name: "CompeftTestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "TaskVectorTests", dependencies: ["TaskVector", "Fixtures", "CompeftTestSupport"], swiftSettings: strict),
        .testTarget(name: "QuantizeTests", dependencies: ["Quantize", "TaskVector", "CompeftTestSupport"], swiftSettings: strict),
        .testTarget(name: "AdapterFormatTests", dependencies: ["AdapterFormat", "Quantize", "TaskVector", "Fixtures", "CompeftTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ExchangeTests", dependencies: ["compeft", "Exchange", "AdapterFormat", "Quantize", "TaskVector", "Fixtures", "CompeftTestSupport"],
            exclude: ["faultproxy.py", "tokenserver.py"], swiftSettings: strict),
        .testTarget(name: "compeftTests", dependencies: ["compeft", "Commands", "AdapterFormat", "TaskVector", "Fixtures", "CompeftTestSupport"], swiftSettings: strict),
        // Drives libCompeftC.so through its C symbols from separate processes (Tests/c/test_abi.c, the ctypes
        // example), so it does not link CompeftC; `swift build --build-tests` builds the library product anyway.
        .testTarget(name: "CompeftCTests", dependencies: ["AdapterFormat", "Quantize", "TaskVector", "Fixtures", "CompeftTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ExamplesTests", dependencies: ["compeft-example-apply", "AdapterFormat", "Quantize", "TaskVector", "Fixtures", "CompeftTestSupport"],
            swiftSettings: strict),
    ]
)
