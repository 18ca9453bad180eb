public import Quantize

// `compress` and `analyze` read `--alpha`, and a merge into a `.cpeft` reads `--out-alpha`: one parser.

extension CompressionOptions.Alpha {
    /// Parses `--alpha` and `--out-alpha`: `auto`, or a positive finite number.
    ///
    /// - Throws: ``AlphaArgumentError`` naming what was given.
    @Sendable static func argument(_ text: String) throws -> CompressionOptions.Alpha {
        guard let alpha = CompressionOptions.Alpha(text) else { throw AlphaArgumentError(text: text) }
        return alpha
    }
}

/// An α that is neither `auto` nor a positive number.
struct AlphaArgumentError: Error, CustomStringConvertible {
    var text: String
    var description: String { "α must be a positive number or auto, got '\(text)'" }
}
