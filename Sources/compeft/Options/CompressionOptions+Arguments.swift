public import ArgumentParser
public import Quantize

// `compress` and `analyze` read these, and a merge into a `.cpeft` reads the α: one definition each.

extension CompressionOptions.Method: ExpressibleByArgument {}

extension CompressionOptions.Scope: ExpressibleByArgument {}

extension CompressionOptions.Scale: ExpressibleByArgument {}

extension CompressionOptions.LoRAGauge: ExpressibleByArgument {}

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
