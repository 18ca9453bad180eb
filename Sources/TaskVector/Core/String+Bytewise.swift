#if canImport(Glibc)
import Glibc
#endif

/// Byte-level tests on a string's UTF-8, for code that runs once per tensor: a checkpoint may hold a
/// million tensors, and `String`'s `Character` view (or Foundation's `range(of:)`) costs a hundred times
/// a `memcmp`.
extension String {
    /// Whether `self` sorts before `other` by their UTF-8 bytes (the bytewise order compeft lists tensors
    /// in): the same answer as `self.utf8.lexicographicallyPrecedes(other.utf8)`.
    ///
    /// - Complexity: O(min(m, n)), a `memcmp` when both strings are native.
    package func utf8Precedes(_ other: String) -> Bool {
        let fast = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b -> Bool in
                let common = min(a.count, b.count)
                if common > 0 {
                    let order = memcmp(a.baseAddress!, b.baseAddress!, common)
                    if order != 0 { return order < 0 }
                }
                return a.count < b.count
            }
        }
        if let fast, let result = fast { return result }
        return utf8.lexicographicallyPrecedes(other.utf8)
    }

    /// Whether every byte of `self` is ASCII, so that its `Character`s are its bytes and a bytewise
    /// search finds what `String`'s and Foundation's searches find.
    package var isASCIIOnly: Bool {
        utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 < 0x80 } } ?? utf8.allSatisfy { $0 < 0x80 }
    }

    /// Whether `self`'s UTF-8 ends with the bytes of `suffix`.
    package func utf8HasSuffix(_ suffix: String) -> Bool {
        let n = suffix.utf8.count
        return utf8.count >= n && utf8.suffix(n).elementsEqual(suffix.utf8)
    }

    /// The byte offset of the first (or, `backwards`, the last) occurrence of `needle`'s UTF-8 in
    /// `self`'s, or `nil`.
    package func utf8Offset(of needle: String, backwards: Bool = false) -> Int? {
        func find(_ hay: UnsafeBufferPointer<UInt8>) -> Int? {
            var pattern = needle
            return pattern.withUTF8 { p -> Int? in
                guard !p.isEmpty, p.count <= hay.count else { return nil }
                let starts = 0...(hay.count - p.count)
                let matches = { (i: Int) in hay[i] == p[0] && memcmp(hay.baseAddress! + i, p.baseAddress!, p.count) == 0 }
                return backwards ? starts.reversed().first(where: matches) : starts.first(where: matches)
            }
        }
        if let found = utf8.withContiguousStorageIfAvailable(find) { return found }
        return Array(utf8).withUnsafeBufferPointer(find)
    }
}
