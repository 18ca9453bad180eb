import Foundation

/// Paths of the committed fixtures, for tests.
package enum Fixtures {
    /// The folder holding the fixture files.
    package static var root: String {
        Bundle.module.resourceURL!.appendingPathComponent("files").path
    }

    package static func path(_ name: String) -> String { root + "/" + name }
}
