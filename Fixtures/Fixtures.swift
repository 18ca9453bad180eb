package import Foundation

/// Test data shipped with the package: everything under `Fixtures/files`, copied as a resource.
///
/// After swift-subprocess `Tests/TestResources/TestResources.swift`: one `package` accessor over
/// `Bundle.module`, so tests name files by their path below `files/`.
package enum Fixtures {
    /// The folder that holds the fixture files.
    package static var root: URL {
        Bundle.module.resourceURL!.appendingPathComponent("files", isDirectory: true)
    }

    /// The absolute path of a fixture, e.g. `Fixtures.path("merge/cases.json")`.
    package static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }
}
