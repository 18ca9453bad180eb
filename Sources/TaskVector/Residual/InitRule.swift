/// What a tensor's residual is measured from: τ = value − init.
public enum InitRule: String, Sendable, Codable, CaseIterable {
    /// τ = value (LoRA factors, plain residual files).
    case zero
    /// τ = value − 1 ((IA)³ scaling vectors).
    case one
    /// τ = value − base (a full fine-tune against its base model).
    case base
}

/// How a tensor is stored.
public enum TensorRole: String, Sendable, Codable {
    /// A residual, compressed.
    case residual
    /// Kept exactly as it is (non-float tensors, PEFT `modules_to_save` copies by default).
    case exact
}
