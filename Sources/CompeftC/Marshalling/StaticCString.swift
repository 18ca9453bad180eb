#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NUL-terminated copies of Swift strings that live until the process ends: the version and the status
/// names the header promises as static strings.
enum StaticCString {
    /// A copy of `string` that is never freed.
    static func make(_ string: String) -> UnsafePointer<CChar> {
        UnsafePointer(strdup(string)!)
    }
}
