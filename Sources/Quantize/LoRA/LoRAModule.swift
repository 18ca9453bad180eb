import Foundation
public import TaskVector

/// One LoRA module of an input: the residual tensors `lora_A` (r × in) and `lora_B` (out × r) whose
/// product B·A is the module's update (times PEFT's `lora_alpha / r`, which compression never touches).
///
/// A convolution's factors pair too: `lora_A` of shape (r, in, kh, kw) is read as r × (in·kh·kw) and
/// `lora_B` of shape (out, r, 1, 1) as out × r, both row-major, as PEFT stores them; so do
/// `lora_embedding_A` (r × vocabulary) and `lora_embedding_B` (dim × r).
public struct LoRAModule: Sendable, Equatable {
    /// The module's name: the factors' common prefix without its final dot.
    public var name: String
    /// Indices of the two factors in the tensor list the module was found in.
    public var a: Int
    public var b: Int
    /// r, and the product's shape out × in.
    public var rank: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(name: String, a: Int, b: Int, rank: Int, inFeatures: Int, outFeatures: Int) {
        self.name = name
        self.a = a
        self.b = b
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// The LoRA modules among `tensors`, in the order of their `lora_A` tensors.
    ///
    /// A module is a residual floating-point tensor named `<prefix>lora_A` or `<prefix>lora_A.weight`
    /// (or `lora_embedding_A`) measured from 0, and its partner with `B` in place of `A`, also a residual
    /// measured from 0, whose shapes are r × … and out × r (× 1 …) with the same r > 0. Tensors that do
    /// not pair so (a LoRA bias, a factor without its partner, shapes that do not fit) are not modules;
    /// compression treats them as single tensors.
    ///
    /// - Complexity: O(n) dictionary lookups for n tensors.
    public static func pairs(in tensors: [SourceTensor]) -> [LoRAModule] {
        // The names of the lora_A candidates first: an input without any needs no index of every name.
        let candidates = tensors.indices.compactMap { i in partnerName(ofA: tensors[i].name).map { (i, $0.prefix, $0.partner) } }
        guard !candidates.isEmpty else { return [] }
        var index: [String: Int] = [:]
        index.reserveCapacity(tensors.count)
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        var modules: [LoRAModule] = []
        for (i, prefix, partner) in candidates {
            let t = tensors[i]
            guard let j = index[partner] else { continue }
            let a = t
            let b = tensors[j]
            guard isFactor(a), isFactor(b), a.shape.count >= 2, b.shape.count >= 2,
                  b.shape.dropFirst(2).allSatisfy({ $0 == 1 }), a.shape[0] > 0, a.shape[0] == b.shape[1]
            else { continue }
            let r = a.shape[0]
            modules.append(LoRAModule(name: String(prefix.hasSuffix(".") ? prefix.dropLast() : prefix), a: i, b: j, rank: r,
                                      inFeatures: a.count / r, outFeatures: b.shape[0]))
        }
        return modules
    }

    static func isFactor(_ t: SourceTensor) -> Bool {
        t.role == .residual && t.initRule == .zero && t.dtype.isFloatingPoint
    }

    /// For a `lora_A` name, its prefix and the name of its `lora_B` partner; `nil` for any other name.
    static func partnerName(ofA name: String) -> (prefix: Substring, partner: String)? {
        // An ASCII name is a factor only when it ends in the token or the token and `.weight`: most names
        // are ruled out bytewise, without Foundation's search (this runs for every tensor).
        if name.isASCIIOnly, !name.utf8HasSuffix("_A"), !name.utf8HasSuffix("_A.weight") { return nil }
        for (tokenA, tokenB) in [("lora_embedding_A", "lora_embedding_B"), ("lora_A", "lora_B")] {
            guard let r = name.range(of: tokenA, options: .backwards) else { continue }
            let prefix = name[..<r.lowerBound]
            let suffix = name[r.upperBound...]
            guard suffix.isEmpty || suffix == ".weight", prefix.isEmpty || prefix.hasSuffix(".") else { continue }
            return (prefix, prefix + tokenB + suffix)
        }
        return nil
    }
}
