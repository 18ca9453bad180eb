// swift-tools-version: 6.1
// A libFuzzer harness over compeft's readers and decoders; see scripts/fuzz.sh.
import PackageDescription

let package = Package(
    name: "CompeftFuzz",
    dependencies: [.package(name: "compeft", path: "..")],
    targets: [
        .executableTarget(
            name: "FuzzReaders",
            dependencies: [
                .product(name: "TaskVector", package: "compeft"),
                .product(name: "Quantize", package: "compeft"),
                .product(name: "AdapterFormat", package: "compeft"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]),
    ]
)
