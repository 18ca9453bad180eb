import Foundation
import TaskVector

/// Reading format 1.0: a 48-byte trailer and a JSON index in one zstd frame (docs/FORMAT.md, "Format 1.0").
extension ContainerReader {
    /// Opens the trailer and JSON index of a format 1.0 container.
    ///
    /// - Parameter preamble: the file's first 16 bytes.
    static func openVersion10(_ source: any ByteSource, preamble: [UInt8]) throws -> (DecodedIndex, indexStart: Int) {
        let path = source.name
        func bad(_ message: String) -> FormatError { FormatError(.malformed, file: path, message) }
        typealias Legacy = ContainerLayout.Legacy
        let size = source.size
        guard preamble.count == Legacy.preambleSize, size >= Legacy.preambleSize + Legacy.trailerSize else {
            throw bad("not a compeft container: \(size) bytes is too short for format 1.0")
        }
        let t = size - Legacy.trailerSize
        let trailerBytes = try read(source, t..<size)
        guard let trailer = Legacy.Trailer(parsing: trailerBytes) else {
            throw bad("container is truncated or damaged (no trailer at the end)")
        }
        guard XXH64.hash(preamble + trailerBytes[0..<32]) == trailer.headerHash else {
            throw FormatError(.checksum, file: path, "trailer checksum mismatch: the header is corrupt")
        }
        guard trailer.indexOffset >= UInt64(Legacy.preambleSize), trailer.indexLength <= UInt64(t),
            trailer.indexOffset == UInt64(t) - trailer.indexLength
        else { throw bad("index location \(trailer.indexOffset)+\(trailer.indexLength) does not end at the trailer (\(t))") }
        guard trailer.indexRawLength <= trailer.indexLength * UInt64(Zstd.maxExpansion), trailer.indexRawLength <= 1 << 30 else {
            throw bad("index claims \(trailer.indexRawLength) bytes, impossible for \(trailer.indexLength) stored bytes")
        }
        let indexStart = Int(trailer.indexOffset)
        let stored = try read(source, indexStart..<t)
        guard XXH64.hash(stored) == trailer.indexHash else {
            throw FormatError(.checksum, file: path, "index checksum mismatch: the index is corrupt")
        }
        var json = [UInt8](repeating: 0, count: Int(trailer.indexRawLength))
        do {
            try stored.withUnsafeBytes { stored in
                try Zstd.checkDecodedLength(stored, is: json.count)
                try json.withUnsafeMutableBytes { try Zstd.decompress(stored, into: $0) }
            }
        } catch {
            throw bad("index does not decompress: \(error)")
        }
        let index: ContainerIndex
        do {
            index = try JSONDecoder().decode(ContainerIndex.self, from: Data(json))
        } catch {
            throw bad("index is not valid: \(JSONDiagnosis.explain(error, in: json, as: ContainerIndex.self))")
        }
        return (DecodedIndex(index: index, inlineFiles: [:], refusedTensors: [:], refusedFiles: [:]), indexStart)
    }
}
