import Commands
import Foundation

/// Hands a report to the caller as a NUL-terminated string it frees with `compeft_string_free`.
enum OwnedString {
    /// Stores a `malloc`'d copy of `report`, as compact JSON with sorted keys, in `*out` (when `out` is
    /// not NULL).
    static func hand(_ report: [String: Any], to out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) throws(ABIError) {
        guard let out else { return }
        let bytes: [UInt8]
        do {
            bytes = try CommandReports.encode(report)
        } catch {
            throw ABIError(status: .unsupported, message: "the report cannot be written as JSON: \(error)")
        }
        guard let copy = malloc(bytes.count + 1) else {
            throw ABIError(status: .unsupported, message: "out of memory for a \(bytes.count)-byte report")
        }
        bytes.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        copy.storeBytes(of: 0, toByteOffset: bytes.count, as: UInt8.self)
        out.pointee = copy.assumingMemoryBound(to: CChar.self)
    }
}
