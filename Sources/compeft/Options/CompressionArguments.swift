import ArgumentParser
import Quantize
import TaskVector

/// `--method`, `--scope` and `--alpha`: how `compress` compresses and how `analyze` measures, declared once.
struct CompressionArguments: ParsableArguments {
    @Option(help: "compeft (±α·σ), stc (±α·mean|kept|) or prune (kept values unchanged; not for analyze).")
    var method = CompressionOptions.Method.compeft

    @Option(help: "global: one threshold and scale for all tensors (the paper); tensor: per tensor.")
    var scope = CompressionOptions.Scope.global

    @Option(parsing: .unconditional, help: "Scale multiplier α > 0, or auto for the norm-preserving scale ‖τ‖/√n (default).",
            transform: CompressionOptions.Alpha.argument)
    var alpha = CompressionOptions.Alpha.auto

    /// The compression these arguments ask for at `density`.
    func options(density: Density) -> CompressionOptions {
        CompressionOptions(method: method, scope: scope, density: density, alpha: alpha)
    }
}
