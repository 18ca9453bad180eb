@_exported import CompeftTestSupport

/// The built C library (`libCompeftC.so`), next to the test bundle.
enum BuiltLibrary {
    static let path = builtProduct("libCompeftC.so")
    static var directory: String { String(path[..<path.lastIndex(of: "/")!]) }
}
