/// The scale a LoRA layer applies to `B·A`: `lora_alpha / r`, or `lora_alpha / √r` with rsLoRA.
public struct LoRAScaling: Sendable, Hashable {
    /// `r`.
    public var rank: Int
    /// `lora_alpha`.
    public var alpha: Double
    /// `use_rslora`.
    public var useRSLoRA: Bool

    public init(rank: Int, alpha: Double, useRSLoRA: Bool = false) {
        precondition(rank > 0, "LoRA rank must be positive, got \(rank)")
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
    }

    /// The configuration of every merged adapter compeft writes: `r = lora_alpha = rank`,
    /// `use_rslora = false`, so the scale is exactly 1 and all weights and scales live in the factors.
    ///
    /// PEFT's `add_weighted_adapter` writes `r = lora_alpha = new_rank` too, but copies `use_rslora`
    /// from the first adapter; when that is `true`, PEFT's merged adapter is scaled by √r. Write
    /// `use_rslora: false` with these factors.
    public static func unit(rank: Int) -> LoRAScaling {
        LoRAScaling(rank: rank, alpha: Double(rank), useRSLoRA: false)
    }

    /// `alpha / rank`, or `alpha / √rank` with rsLoRA (PEFT's `LoraLayer.update_layer`).
    public var scale: Double {
        useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }
}

/// One layer of one LoRA adapter: `ΔW = scale · B · A`.
///
/// The factors are stored as PEFT stores them: `lora_A.weight` is `rank × inFeatures` and
/// `lora_B.weight` is `outFeatures × rank`, both row-major.
public struct LoRAFactors: Sendable, Equatable {
    /// `lora_A.weight`, rank × inFeatures.
    public var a: [Float]
    /// `lora_B.weight`, outFeatures × rank.
    public var b: [Float]
    public var inFeatures: Int
    public var outFeatures: Int
    public var scaling: LoRAScaling

    /// - Precondition: `a.count == scaling.rank * inFeatures` and `b.count == outFeatures * scaling.rank`.
    public init(a: [Float], b: [Float], inFeatures: Int, outFeatures: Int, scaling: LoRAScaling) {
        precondition(a.count == scaling.rank * inFeatures,
                     "lora_A has \(a.count) values, expected \(scaling.rank)×\(inFeatures)")
        precondition(b.count == outFeatures * scaling.rank,
                     "lora_B has \(b.count) values, expected \(outFeatures)×\(scaling.rank)")
        self.a = a
        self.b = b
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scaling = scaling
    }

    /// `r`.
    public var rank: Int { scaling.rank }

    /// A as a `Double` matrix.
    public var aMatrix: Matrix { Matrix(rows: rank, cols: inFeatures, floats: a) }
    /// B as a `Double` matrix.
    public var bMatrix: Matrix { Matrix(rows: outFeatures, cols: rank, floats: b) }

    /// `scale · B · A` in `Double` (outFeatures × inFeatures).
    public var deltaWeight: Matrix {
        var d = bMatrix.multiplied(by: aMatrix)
        let s = scaling.scale
        for i in d.elements.indices { d.elements[i] *= s }
        return d
    }
}
