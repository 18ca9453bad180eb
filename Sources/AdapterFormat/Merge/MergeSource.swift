import Foundation
import Quantize
public import TaskVector

/// One input of a merge, whatever form it has: a PEFT adapter folder, a checkpoint of residuals or
/// of a full fine-tune (against a base), or a `.cpeft` container.
///
/// A source hands out each tensor's residual τ (what the merge methods combine), its stored values
/// (for tensors that are not residuals, such as `modules_to_save` heads), its original bytes, and —
/// for a container tensor stored as a sign-form ternary code — the code itself, so that a merge can
/// run on the bits (``TernaryMerge``) without expanding the expert to floats. Container payloads are
/// read only through ``ContainerReader/payload(_:)``; their byte layout is the reader's business.
public final class MergeSource {
    /// How the source was given.
    public enum Format: String, Sendable {
        /// A folder with `adapter_config.json`.
        case peftFolder = "peft-folder"
        /// A safetensors file, sharded checkpoint, HDF5 or PyTorch file.
        case checkpoint
        /// A `.cpeft` container.
        case container = "cpeft"
    }

    /// One tensor: name, dtype, shape and the output file it belongs to.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// The file it is written to (`adapter_model.safetensors`, a shard name, …).
        public var file: String
        public var count: Int
    }

    enum Storage {
        case input(Lookup<SourceTensor>)
        case container(ContainerReader, Lookup<ContainerIndex.Tensor>)
        /// Let go by ``releaseTensors()``.
        case released
    }

    /// A source's own tensor entries, by position in ``MergeSource/tensors`` (found by
    /// ``MergeSource/position(of:)``; no dictionary of copies: a source may hold a million tensors).
    struct Lookup<Item> {
        /// The entries, in their own order.
        let items: [Item]
        /// For each of ``MergeSource/tensors``, the position of its entry in ``items``.
        let order: [Int]

        subscript(position: Int) -> Item { items[order[position]] }
    }

    /// The path as the user gave it.
    public let path: String
    public let format: Format
    public let kind: TaskVectorInput.Kind
    /// `peft_type` of an adapter.
    public let peftType: String?
    /// The adapter's `adapter_config.json`, verbatim.
    public let adapterConfig: [UInt8]?
    /// Tensors in name order (bytewise); empty once ``releaseTensors()`` let them go.
    public private(set) var tensors: [Tensor]
    /// `__metadata__` of each tensor file, by file name.
    public let fileMetadata: [String: [String: String]]
    /// Files restored verbatim besides the tensors (a shard index), without `adapter_config.json`.
    public let auxiliaryFiles: [(name: String, bytes: [UInt8])]
    private(set) var storage: Storage
    /// Positions by name, only when ``tensors`` are not ASCII names in strictly increasing order (they are
    /// searched by bisection when they are: no hash table of a million names). ASCII, because a name
    /// matches another that is canonically equivalent (`String`'s `==`, as a dictionary does), and
    /// only for ASCII is that the same bytes.
    private var positions: [String: Int]?
    /// The position ``position(of:)`` found last.
    private var lastPosition = 0

    /// The gauge a container's LoRA factors are stored in (`svd`, `svd-dct`), when it is not the trained
    /// one: its factors reproduce each module's product B·A, not the trained A and B one by one.
    public let loraGauge: String?

    init(path: String, format: Format, kind: TaskVectorInput.Kind, peftType: String?, adapterConfig: [UInt8]?,
         tensors: [Tensor], fileMetadata: [String: [String: String]], auxiliaryFiles: [(name: String, bytes: [UInt8])],
         storage: () -> Storage) {
        self.path = path
        self.format = format
        self.kind = kind
        self.peftType = peftType
        self.adapterConfig = adapterConfig
        self.tensors = tensors
        self.fileMetadata = fileMetadata
        self.auxiliaryFiles = auxiliaryFiles
        if tensors.allSatisfy(\.name.isASCIIOnly), zip(tensors, tensors.dropFirst()).allSatisfy({ $0.name.utf8Precedes($1.name) }) {
            positions = nil
        } else {
            var positions: [String: Int] = [:]
            positions.reserveCapacity(tensors.count)
            for (i, t) in tensors.enumerated() {
                precondition(positions.updateValue(i, forKey: t.name) == nil, "tensor '\(t.name)' listed twice")
            }
            self.positions = positions
        }
        let storage = storage()
        self.storage = storage
        if case .container(let reader, _) = storage, let g = reader.index.compression.loraGauge, g != "trained" {
            loraGauge = g
        } else {
            loraGauge = nil
        }
    }

    /// Lets the tensors go — their list, lookup and storage (a container's reader and index) — keeping
    /// what describes the source (path, format, kind, configuration, metadata, gauge); ``tensor(_:)``
    /// finds nothing after. A merge to a container calls this once every tensor is merged, so that
    /// compressing the result does not also hold every input's index (hundreds of bytes a tensor).
    func releaseTensors() {
        tensors = []
        positions = nil
        storage = .released
    }

    /// Opens `path`: a `.cpeft` container (recognized by its magic bytes), a PEFT adapter folder, or a
    /// checkpoint, read as a full fine-tune against `base` when one is given (τ = input − base).
    ///
    /// - Throws: ``TaskVectorError`` or ``FormatError`` naming the file for unreadable input.
    public static func open(path: String, base: String?) throws -> MergeSource {
        if isContainer(path) { return try openContainer(path: path) }
        let isAdapter = FileManager.default.fileExists(atPath: path + "/adapter_config.json")
        let input = try TaskVectorInput.load(path: path, base: isAdapter ? nil : base)
        let format: Format = input.kind == .peftAdapter ? .peftFolder : .checkpoint
        let tensors = input.tensors.map {
            Tensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, file: $0.fileName, count: $0.count)
        }
        return MergeSource(path: path, format: format, kind: input.kind, peftType: input.adapterConfig?.peftType,
                           adapterConfig: input.adapterConfig?.raw, tensors: tensors, fileMetadata: input.fileMetadata,
                           auxiliaryFiles: input.auxiliaryFiles.filter { $0.name != "adapter_config.json" },
                           storage: { .input(Lookup(items: input.tensors, order: Array(input.tensors.indices))) })
    }

    /// Whether `path` is a file that starts with the container magic.
    /// Anything that is not a regular file is left to the other readers, which refuse it by name.
    package static func isContainer(_ path: String) -> Bool {
        guard path != "-", let file = try? FileByteSource(path: path), file.size >= ContainerLayout.magic.count,
            let head = try? file.bytes(0..<ContainerLayout.magic.count)
        else { return false }
        return head == ContainerLayout.magic
    }

    static func openContainer(path: String) throws -> MergeSource {
        let reader = try ContainerReader(path: path)
        _ = try reader.checkedAdapterConfig()
        let index = reader.index
        guard let kind = TaskVectorInput.Kind(rawValue: index.inputKind) else {
            throw FormatError(.unsupported, file: path, "input kind '\(index.inputKind)' is not known to this compeft")
        }
        var config: [UInt8]?
        var auxiliary: [(name: String, bytes: [UInt8])] = []
        for f in index.files {
            let bytes = try reader.contents(of: f)
            if f.name == "adapter_config.json" { config = bytes } else { auxiliary.append((f.name, bytes)) }
        }
        let entries = index.tensors
        let order = entries.indices.sorted { entries[$0].name.utf8Precedes(entries[$1].name) }
        let tensors = order.map { i in
            Tensor(name: entries[i].name, dtype: entries[i].dtype, shape: entries[i].shape, file: entries[i].file, count: entries[i].count)
        }
        return MergeSource(path: path, format: .container, kind: kind, peftType: index.peftType, adapterConfig: config,
                           tensors: tensors, fileMetadata: index.fileMetadata, auxiliaryFiles: auxiliary,
                           storage: { .container(reader, Lookup(items: entries, order: order)) })
    }

    /// The tensor called `name`.
    public func tensor(_ name: String) -> Tensor? { position(of: name).map { tensors[$0] } }

    /// The position in ``tensors`` of the tensor called `name`.
    ///
    /// A merge walks the tensors in name order and asks for each several times, so the position found
    /// last and the one after it are tried before searching: one sorted pass, not a search per question.
    ///
    /// - Complexity: O(1) for those two, else O(log n) name comparisons (O(1) hashing when the tensors
    ///   are not ASCII names in order; O(n) for a name that is not ASCII, which can only be found then
    ///   as a canonically equivalent ASCII name).
    func position(of name: String) -> Int? {
        let last = lastPosition
        if last < tensors.count, tensors[last].name == name { return last }
        if last + 1 < tensors.count, tensors[last + 1].name == name {
            lastPosition = last + 1
            return last + 1
        }
        let found: Int?
        if let positions {
            found = positions[name]
        } else if !name.isASCIIOnly {
            found = tensors.firstIndex { $0.name == name }
        } else {
            var (low, high) = (0, tensors.count)
            while low < high {
                let mid = low + (high - low) / 2
                if tensors[mid].name.utf8Precedes(name) { low = mid + 1 } else { high = mid }
            }
            found = low < tensors.count && tensors[low].name == name ? low : nil
        }
        if let found { lastPosition = found }
        return found
    }

    /// The init rule this source measures `name`'s residual from.
    func initRule(of name: String) -> InitRule {
        switch storage {
        case .input(let entries): entries[position(of: name)!].initRule
        case .container(_, let entries): entries[position(of: name)!].initRule
        case .released: preconditionFailure(released)
        }
    }
}

// MARK: - Reading values

extension MergeSource {
    /// Values loaded per call of ``SourceTensor/loadResidual(from:into:scratch:)``.
    static let chunk = 1 << 16

    /// The tensor's sign-form ternary code and scale, when the container stores it as one and its
    /// residual is measured from `expected` (or from the source's own init when `expected` is nil).
    ///
    /// Reads and checks the payload; returns `nil` for every other storage (exact, sparse values, a
    /// checkpoint input).
    func ternaryExpert(_ name: String, expected: InitRule?) throws -> TernaryExpert? {
        guard case .container(let reader, let entries) = storage, let p = position(of: name), case let t = entries[p],
            t.role == .residual,
            expected == nil || expected == t.initRule
        else { return nil }
        guard case .code(let code) = try reader.payload(t), code.values.isEmpty else { return nil }
        return TernaryExpert(code: code, scale: Float(bitPattern: t.scaleBits))
    }

    /// Writes the residual τ of `name` into `destination`.
    ///
    /// τ = value − init, with init the source's own (0, 1, or the base it was compressed against) when
    /// `expected` is nil, else `expected` (0 or 1 for adapter tensors). A container's coded residual is
    /// used as it is when the inits agree.
    ///
    /// - Throws: when the payload is corrupt, the tensor is not floating point, or a full fine-tune's
    ///   tensor is stored as full weights and no `base` was given.
    func loadResidual(_ name: String, expected: InitRule?, base: Checkpoint?,
                      into destination: UnsafeMutableBufferPointer<Float>) throws {
        switch storage {
        case .input(let entries):
            let t = entries[position(of: name)!]
            guard t.dtype.isFloatingPoint else { throw notFloat(name, t.dtype) }
            if let expected, expected != t.initRule {
                t.data.loadFloats(from: 0, into: destination)
                subtract(expected, name: name, base: base, from: destination)
                return
            }
            // Only a base init reads into the scratch, at most a chunk at a time.
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.initRule == .base ? min(Self.chunk, t.count) : 0)
            defer { scratch.deallocate() }
            var start = 0
            while start < t.count {
                let n = min(Self.chunk, t.count - start)
                t.loadResidual(from: start, into: UnsafeMutableBufferPointer(rebasing: destination[start..<(start + n)]),
                               scratch: scratch)
                start += n
            }
            t.releasePages(elements: 0..<t.count)
        case .container(let reader, let entries):
            let t = entries[position(of: name)!]
            guard t.dtype.isFloatingPoint else { throw notFloat(name, t.dtype) }
            let target = expected ?? t.initRule
            switch try reader.payload(t) {
            case .code(let code):
                let scale = Float(bitPattern: t.scaleBits)
                if target == t.initRule || t.initRule == .base {
                    code.decode(scale: scale, into: destination)
                } else {
                    // The container measured this tensor from another init (compressed with --init).
                    destination.update(repeating: t.initRule == .one ? 1 : 0)
                    code.accumulate(scale: scale, into: destination)
                    subtract(target, name: name, base: base, from: destination)
                }
            case .exact(let raw):
                raw.withUnsafeBytes { TensorData(dtype: t.dtype, bytes: $0, owner: nil).loadFloats(from: 0, into: destination) }
                if target == .base && base == nil {
                    throw TaskVectorError(.unsupported, file: path, tensor: name,
                                          "is stored as full weights, not as a residual; pass --base BASE to merge it")
                }
                subtract(target, name: name, base: base, from: destination)
            }
        case .released:
            preconditionFailure(released)
        }
    }

    /// Writes the values the source stores for `name` (init + residual, or the exact values).
    func loadValues(_ name: String, base: Checkpoint?, into destination: UnsafeMutableBufferPointer<Float>) throws {
        switch storage {
        case .input(let entries):
            let t = entries[position(of: name)!]
            guard t.dtype.isFloatingPoint else { throw notFloat(name, t.dtype) }
            t.data.loadFloats(from: 0, into: destination)
            t.data.releasePages(elements: 0..<t.count)
        case .container(let reader, let entries):
            let t = entries[position(of: name)!]
            if t.role == .residual && t.initRule == .base && base == nil {
                throw TaskVectorError(.unsupported, file: path, tensor: name, "needs --base BASE to rebuild its values")
            }
            try reader.decodeValues(t, base: base?.data(name), into: destination)
        case .released:
            preconditionFailure(released)
        }
    }

    /// The tensor's values as ``loadValues(_:base:into:)`` writes them, in a new array.
    func values(_ name: String, base: Checkpoint?) throws -> [Float] {
        let n = tensor(name)!.count
        return try [Float](unsafeUninitializedCapacity: n) { out, initialized in
            out.initialize(repeating: 0)
            initialized = n
            try loadValues(name, base: base, into: out)
        }
    }

    /// The tensor's original bytes in its dtype, when the source holds them (a checkpoint, or a
    /// container tensor stored exactly); `nil` for a coded tensor.
    func originalBytes(_ name: String) throws -> [UInt8]? {
        switch storage {
        case .input(let entries):
            return Array(entries[position(of: name)!].data.bytes)
        case .container(let reader, let entries):
            guard case .exact(let raw) = try reader.payload(entries[position(of: name)!]) else { return nil }
            return raw
        case .released:
            preconditionFailure(released)
        }
    }

    /// Subtracts init `rule` (0, 1 or the base tensor) from `values`.
    private func subtract(_ rule: InitRule, name: String, base: Checkpoint?, from values: UnsafeMutableBufferPointer<Float>) {
        switch rule {
        case .zero:
            break
        case .one:
            for i in values.indices { values[i] -= 1 }
        case .base:
            guard let data = base?.data(name) else { return }
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: values.count)
            defer { b.deallocate() }
            data.loadFloats(from: 0, into: b)
            for i in values.indices { values[i] -= b[i] }
        }
    }

    private var released: String { "the tensors of '\(path)' were let go (a merger writes once)" }

    private func notFloat(_ name: String, _ dtype: DType) -> TaskVectorError {
        TaskVectorError(.unsupported, file: path, tensor: name, "\(dtype.rawValue) tensor holds no floating-point values to merge")
    }
}

extension FileManager {
    func isDirectoryPath(_ path: String) -> Bool {
        var d: ObjCBool = false
        return fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }
}
