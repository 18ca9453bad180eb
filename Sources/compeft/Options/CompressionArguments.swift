import ArgumentParser
import Quantize
import TaskVector

/// `--method`, `--scope`, `--scale`, `--lora-gauge` and `--alpha`: how `compress` compresses and how
/// `analyze` measures, declared once. Options left out take the defaults for the kind of expert
/// (``CompressionOptions/rule(for:)``).
struct CompressionArguments: ParsableArguments {
    @Option(help: "compeft (±α·σ), stc (±α·mean|kept|) or prune (kept values unchanged; not for analyze).")
    var method = CompressionOptions.Method.compeft

    @Option(help: "Where the threshold is chosen: global (one top-k over all residuals, the paper) or tensor (per tensor). Default: tensor for a full fine-tune, global otherwise.")
    var scope: CompressionOptions.Scope?

    @Option(help: "Which values share a scale: global (the paper), tensor, or module (per LoRA module, norm-preserving on B·A; per tensor for other residuals). Default: module for LoRA with α auto, else tensor with --scope tensor, global with --scope global. The paper's rule (compeft's default before per-expert defaults): --scope global --scale global --lora-gauge trained.")
    var scale: CompressionOptions.Scale?

    @Option(help: "The gauge LoRA factors are thresholded and stored in: trained (as trained), svd (B = U√Σ, A = √ΣVᵀ), svd-dct (svd rotated by a DCT), auto (svd or svd-dct, whichever has the smaller product error). Default: auto with --scale module, else trained.")
    var loraGauge: CompressionOptions.LoRAGauge?

    @Option(parsing: .unconditional, help: "Scale multiplier α > 0 (s = α·σ), or auto for the norm-preserving scale ‖τ‖/√n (default).",
            transform: CompressionOptions.Alpha.argument)
    var alpha = CompressionOptions.Alpha.auto

    /// Refuses options that cannot go together whatever the input (a usage error).
    func validate() throws {
        do {
            _ = try options(density: .full).rule(for: .lora)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The rule these arguments ask for on `input`.
    ///
    /// - Throws: ``CLIError`` (``ExitStatus/usage``) for an option that does not apply to this kind of
    ///   expert (a LoRA gauge on an input that is not LoRA).
    func rule(density: Density, for input: TaskVectorInput) throws -> CompressionRule {
        do {
            return try options(density: density).rule(for: input.expertKind)
        } catch {
            throw CLIError(status: .usage, message: error.message)
        }
    }

    /// The compression these arguments ask for at `density`.
    func options(density: Density) -> CompressionOptions {
        CompressionOptions(method: method, scope: scope, scale: scale, loraGauge: loraGauge, density: density, alpha: alpha)
    }
}
