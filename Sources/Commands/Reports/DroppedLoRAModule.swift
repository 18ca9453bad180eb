public import AdapterFormat
import Foundation
import TaskVector

/// A LoRA module whose compression kept no non-zero value of a factor, so that its update
/// ΔW = s·B·A decodes to zero: the module is lost, however well the other modules survive.
///
/// One global threshold over all factors can do that to a factor whose values are all small (a
/// `lora_B` trained from its zero init, at a low density); compress, inspect and merge into `.cpeft`
/// warn about it and list the modules under `lora_modules_dropped` in their JSON reports.
public struct DroppedLoRAModule: Sendable, Equatable {
    /// The module: the factor names up to `.lora_A` / `.lora_B` (PEFT's naming).
    public var module: String
    /// The factors of the module that kept nothing, e.g. `lora_B`.
    public var factors: [String]
    /// Their values in all.
    public var values: Int

    /// The modules of `index` with a residual LoRA factor of at least one value that kept no non-zero value.
    public static func all(in index: ContainerIndex) -> [DroppedLoRAModule] {
        var byModule: [String: DroppedLoRAModule] = [:]
        var order: [String] = []
        for t in index.tensors where t.role == .residual && t.count > 0 && t.nonzero == 0 {
            guard let (module, factor) = factor(of: t.name) else { continue }
            if byModule[module] == nil {
                byModule[module] = DroppedLoRAModule(module: module, factors: [], values: 0)
                order.append(module)
            }
            byModule[module]!.factors.append(factor)
            byModule[module]!.values += t.count
        }
        return order.map { byModule[$0]! }
    }

    /// The module and factor a PEFT LoRA tensor name belongs to (`….q_proj.lora_B.weight` →
    /// (`….q_proj`, `lora_B`)); `nil` for other names.
    public static func factor(of name: String) -> (module: String, factor: String)? {
        // An ASCII name (every PEFT name) is searched bytewise, which finds what Foundation's search finds:
        // this runs for every tensor of inspect, compress and merge.
        if name.isASCIIOnly {
            for factor in factors {
                guard let at = name.utf8Offset(of: "." + factor) else { continue }
                let end = at + 1 + factor.utf8.count
                let utf8 = name.utf8
                if end == utf8.count || utf8[utf8.index(utf8.startIndex, offsetBy: end)] == UInt8(ascii: ".") {
                    return (String(name.utf8.prefix(at))!, factor)
                }
            }
            return nil
        }
        for factor in factors {
            if let range = name.range(of: "." + factor), name[range.upperBound...].isEmpty || name[range.upperBound...].hasPrefix(".") {
                return (String(name[..<range.lowerBound]), factor)
            }
        }
        return nil
    }

    private static let factors = ["lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"]

    /// The report entry: `{"module", "factors"}`.
    public var json: [String: Any] { ["module": module, "factors": factors] }

    /// One line that names the modules (the first four), or `nil` when there are none.
    public static func warning(_ modules: [DroppedLoRAModule]) -> String? {
        guard !modules.isEmpty else { return nil }
        let named = modules.prefix(4).map { "\($0.module) (\($0.factors.joined(separator: ", ")))" }.joined(separator: ", ")
        return "\(modules.count) LoRA module(s) kept no value of a factor, so their update ΔW = s·B·A is zero and the "
            + "module is lost: \(named)\(modules.count > 4 ? ", …" : ""); a higher density, or scope tensor, keeps them"
    }
}
