/// A value on the restricted unpickler's stack: only what a PyTorch state dict is made of.
///
/// Lists and dicts are reference types because pickle mutates them after creation (`APPEND`,
/// `SETITEMS`) through the memo; everything else is a value.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    /// A tuple and its nesting depth (1 + the deepest tuple inside it; lists and dicts count 0).
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    /// One of the few globals the unpickler resolves (see ``TorchGlobal``).
    case global(TorchGlobal)
    /// A storage named by a persistent id: `('storage', storage_type, key, location, numel)`.
    case storage(TorchStorageReference)
    /// The result of `torch._utils._rebuild_tensor_v2(...)`: a view of a storage, not yet checked against it.
    case tensor(TorchTensorReference)

    /// The Python type name, for error messages.
    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global(let g): g.qualifiedName
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// A pickled `list`.
final class PickleList {
    var items: [PickleValue] = []
}

/// Owns every list and dict an unpickling creates and empties them all, one by one, when it goes
/// away.
///
/// Without it, a hostile pickle that nests a million lists (or makes them refer to each other)
/// would be freed recursively, one stack frame per level, and overflow the stack. Since the arena
/// holds a reference to every container until it has emptied them, no container is freed while it
/// still holds others; tuples, which are values, are kept shallow by a depth limit instead.
final class PickleArena {
    private var lists: [PickleList] = []
    private var dicts: [PickleDict] = []

    func makeList() -> PickleList {
        let list = PickleList()
        lists.append(list)
        return list
    }

    func makeDict() -> PickleDict {
        let dict = PickleDict()
        dicts.append(dict)
        return dict
    }

    deinit {
        for list in lists { list.items.removeAll() }
        for dict in dicts { dict.removeAll() }
    }
}

/// A pickled `dict` or `collections.OrderedDict`: insertion-ordered, with string or integer keys.
final class PickleDict {
    enum Key: Hashable, CustomStringConvertible {
        case string(String)
        case int(Int)

        var description: String {
            switch self {
            case .string(let s): s
            case .int(let i): String(i)
            }
        }
    }

    private(set) var keys: [Key] = []
    private(set) var values: [PickleValue] = []
    private var index: [Key: Int] = [:]

    var count: Int { keys.count }

    func removeAll() {
        keys.removeAll()
        values.removeAll()
        index.removeAll()
    }

    /// Sets `key` to `value`, keeping the key's first position when it is already present (as Python does).
    func set(_ key: Key, _ value: PickleValue) {
        if let i = index[key] {
            values[i] = value
        } else {
            index[key] = keys.count
            keys.append(key)
            values.append(value)
        }
    }
}

/// The globals a state dict needs; resolving any other name is refused.
enum TorchGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2
    case rebuildParameter
    /// `torch.<Type>Storage`: the element type of a storage.
    case storageType(DType, name: String)

    /// The storages compeft carries: the float types it reads and the integer and bool types it
    /// passes through losslessly.
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    /// Resolves `module.name`, or `nil` if it is not on the allow list.
    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch", _):
            guard let dtype = Self.storageTypes[name] else { return nil }
            self = .storageType(dtype, name: name)
        default: return nil
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: "collections.OrderedDict"
        case .rebuildTensorV2: "torch._utils._rebuild_tensor_v2"
        case .rebuildParameter: "torch._utils._rebuild_parameter"
        case .storageType(_, let name): "torch.\(name)"
        }
    }
}

/// A storage as the pickle names it; its bytes are the archive entry `<archive>/data/<key>`.
struct TorchStorageReference: Equatable {
    var dtype: DType
    var key: String
    var location: String
    /// Elements (not bytes) the storage holds, as the pickle claims.
    var elementCount: Int
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
struct TorchTensorReference: Equatable {
    var storage: TorchStorageReference
    /// In elements.
    var storageOffset: Int
    var shape: [Int]
    var stride: [Int]
}
