/// A restricted unpickler for the `data.pkl` of a `torch.save` archive. It never executes anything.
///
/// It understands the opcodes a state dict is pickled with (protocol 2, plus `FRAME`, `MEMOIZE`,
/// `STACK_GLOBAL`, `SHORT_BINUNICODE` and `BINUNICODE8` from later protocols) and resolves only the
/// globals in ``TorchGlobal``: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
/// `torch._utils._rebuild_parameter` and the `torch.*Storage` types. `REDUCE` is interpreted for
/// exactly these callables (building an empty dict, a ``TorchTensorReference``, or passing a
/// parameter's tensor through), and `BUILD` only on a dict, whose state (attributes such as a
/// state dict's `_metadata`) is ignored. Any other global or opcode is refused with an error
/// naming it; nothing is ever looked up, imported or called.
///
/// Resources are bounded whatever the input claims: the stack, the memo and the total number of
/// container items have fixed limits, every length is checked against the bytes left, integers
/// wider than 64 bits are refused, tuples nest at most ``maxTupleDepth`` deep, and lists and dicts
/// belong to a ``PickleArena`` that frees them without recursion.
struct TorchUnpickler {
    static let maxStackDepth = 1 << 20
    static let maxMemoEntries = 1 << 20
    static let maxContainerItems = 1 << 24
    static let maxGlobalNameLength = 256
    static let maxTupleDepth = 32

    private let bytes: UnsafeRawBufferPointer
    private let path: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var containerItems = 0
    private let arena: PickleArena

    /// Unpickles `bytes` (the contents of `data.pkl` in the file at `path`, named in errors).
    ///
    /// - Parameter arena: owns the lists and dicts created; keep it alive while using the result
    ///   (`withExtendedLifetime`), since it empties them when it is freed.
    /// - Throws: ``TaskVectorError`` `.unsupported` for a global or opcode outside the allowed set,
    ///   `.malformed` for a truncated or inconsistent pickle or a limit exceeded.
    static func unpickle(_ bytes: UnsafeRawBufferPointer, path: String, arena: PickleArena) throws -> PickleValue {
        var machine = TorchUnpickler(bytes: bytes, path: path, arena: arena)
        return try machine.run()
    }

    private init(bytes: UnsafeRawBufferPointer, path: String, arena: PickleArena) {
        self.bytes = bytes
        self.path = path
        self.arena = arena
    }

    // MARK: - Errors

    private func malformed(_ message: String, at offset: Int? = nil) -> TaskVectorError {
        TaskVectorError(.malformed, file: path, "data.pkl byte \(offset ?? position): \(message)")
    }

    private func unsupported(_ message: String) -> TaskVectorError {
        TaskVectorError(.unsupported, file: path, message)
    }

    // MARK: - Reading the byte stream

    private mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= bytes.count - position else {
            throw malformed("needs \(count) more bytes but only \(bytes.count - position) remain (truncated pickle)")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    private mutating func byte() throws -> UInt8 { try take(1)[0] }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let start = position
        _ = try take(MemoryLayout<T>.size)
        return bytes.readLE(T.self, at: start)!
    }

    private mutating func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let raw = try integer(T.self)
        guard let n = Int(exactly: raw), n <= bytes.count - position else {
            throw malformed("length \(raw) runs past the end of the pickle")
        }
        return n
    }

    private mutating func utf8(_ count: Int) throws -> String {
        let start = position
        guard let s = String(validating: try take(count), as: UTF8.self) else {
            throw malformed("string is not valid UTF-8", at: start)
        }
        return s
    }

    /// A `GLOBAL` operand: text up to a newline.
    private mutating func line() throws -> String {
        let start = position
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\n") {
            end += 1
            guard end - start <= Self.maxGlobalNameLength else { throw malformed("GLOBAL name is too long", at: start) }
        }
        guard end < bytes.count else { throw malformed("GLOBAL name has no newline (truncated pickle)", at: start) }
        let text = try utf8(end - start)
        position += 1
        return text
    }

    // MARK: - Stack

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStackDepth else {
            throw malformed("stack exceeds \(Self.maxStackDepth) entries")
        }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else {
            throw malformed("pops from an empty stack")
        }
        return value
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw malformed("needs a MARK but none is set") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    private mutating func countItems(_ n: Int) throws {
        containerItems += n
        guard containerItems <= Self.maxContainerItems else {
            throw malformed("containers hold more than \(Self.maxContainerItems) items in all")
        }
    }

    private mutating func memoize(_ index: Int, _ value: PickleValue) throws {
        guard memo.count < Self.maxMemoEntries || memo[index] != nil else {
            throw malformed("memo exceeds \(Self.maxMemoEntries) entries")
        }
        memo[index] = value
    }

    private func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw malformed("memo entry \(index) was never stored") }
        return value
    }

    // MARK: - The machine

    private mutating func run() throws -> PickleValue {
        while true {
            let at = position
            let opcode = try byte()
            switch opcode {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw unsupported("pickle protocol \(version) is not supported") }
            case 0x95:  // FRAME: a length prefix for the bytes that follow; nothing to do
                _ = try length(UInt64.self)
            case 0x2E:  // STOP
                let result = try pop()
                return result
            case 0x28:  // MARK
                guard marks.count < Self.maxStackDepth else { throw malformed("too many MARKs") }
                marks.append(stack.count)
            case 0x4E: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x4A: try push(.int(Int(try integer(Int32.self))))  // BININT
            case 0x4B: try push(.int(Int(try byte())))  // BININT1
            case 0x4D: try push(.int(Int(try integer(UInt16.self))))  // BININT2
            case 0x8A:  // LONG1: little-endian two's complement of n bytes
                let n = Int(try byte())
                let digits = try take(n)
                guard n <= 8 else { throw malformed("integer of \(n) bytes exceeds 64 bits", at: at) }
                var value: UInt64 = 0
                for (i, b) in digits.enumerated() { value |= UInt64(b) << (8 * i) }
                if n > 0, n < 8, digits[n - 1] & 0x80 != 0 { value |= ~0 << (8 * n) }  // sign-extend
                try push(.int(Int(Int64(bitPattern: value))))
            case 0x47:  // BINFLOAT: big-endian IEEE double
                let start = position
                _ = try take(8)
                try push(
                    .float(
                        Double(
                            bitPattern: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))))
                )
            case 0x58: try push(.string(try utf8(try length(UInt32.self))))  // BINUNICODE
            case 0x8C: try push(.string(try utf8(Int(try byte()))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(try utf8(try length(UInt64.self))))  // BINUNICODE8
            case 0x29: try push(.tuple([], depth: 1))  // EMPTY_TUPLE
            case 0x5D: try push(.list(arena.makeList()))  // EMPTY_LIST
            case 0x7D: try push(.dict(arena.makeDict()))  // EMPTY_DICT
            case 0x74:  // TUPLE
                let items = try popToMark()
                try countItems(items.count)
                try push(try tuple(items, at: at))
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                let n = Int(opcode - 0x84)
                var items: [PickleValue] = []
                for _ in 0..<n { items.append(try pop()) }
                try countItems(n)
                try push(try tuple(items.reversed(), at: at))
            case 0x61:  // APPEND
                let item = try pop()
                try list(at: at).items.append(item)
                try countItems(1)
            case 0x65:  // APPENDS
                let items = try popToMark()
                try list(at: at).items.append(contentsOf: items)
                try countItems(items.count)
            case 0x73:  // SETITEM
                let value = try pop()
                let key = try pop()
                try dict(at: at).set(try dictKey(key, at: at), value)
                try countItems(1)
            case 0x75:  // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of items", at: at) }
                let target = try dict(at: at)
                for i in stride(from: 0, to: items.count, by: 2) {
                    target.set(try dictKey(items[i], at: at), items[i + 1])
                }
                try countItems(items.count / 2)
            case 0x71:  // BINPUT
                try memoize(Int(try byte()), try top(at: at))
            case 0x72:  // LONG_BINPUT
                try memoize(Int(try integer(UInt32.self)), try top(at: at))
            case 0x94:  // MEMOIZE
                try memoize(memo.count, try top(at: at))
            case 0x68: try push(try recall(Int(try byte())))  // BINGET
            case 0x6A: try push(try recall(Int(try integer(UInt32.self))))  // LONG_BINGET
            case 0x63:  // GLOBAL
                let module = try line()
                let name = try line()
                try push(.global(try resolve(module: module, name: name)))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw malformed("STACK_GLOBAL needs two strings", at: at)
                }
                try push(.global(try resolve(module: module, name: name)))
            case 0x52:  // REDUCE
                let arguments = try pop()
                let callable = try pop()
                try push(try reduce(callable, arguments, at: at))
            case 0x51:  // BINPERSID
                try push(try persistentLoad(try pop(), at: at))
            case 0x62:  // BUILD
                let state = try pop()
                let target = try top(at: at)
                guard case .dict = target else {
                    throw unsupported(
                        "pickle BUILD on a \(target.typeName) at byte \(at) is not supported (only on a dict)")
                }
                switch state {
                case .none, .dict, .tuple: break  // attributes of an OrderedDict (a state dict's `_metadata`): ignored
                default: throw malformed("BUILD with a \(state.typeName) state", at: at)
                }
            default:
                throw unsupported(
                    "pickle opcode \(Self.describe(opcode)) at byte \(at) of data.pkl is not supported by compeft's "
                        + "restricted unpickler (a tensor state dict never needs it); refusing to load")
            }
        }
    }

    /// A tuple of `items`, refused if it would nest deeper than ``maxTupleDepth``.
    private func tuple(_ items: [PickleValue], at offset: Int) throws -> PickleValue {
        var depth = 1
        for case .tuple(_, let inner) in items { depth = max(depth, inner + 1) }
        guard depth <= Self.maxTupleDepth else {
            throw malformed("tuples nest deeper than \(Self.maxTupleDepth) levels", at: offset)
        }
        return .tuple(items, depth: depth)
    }

    private func top(at offset: Int) throws -> PickleValue {
        guard let value = stack.last, stack.count > (marks.last ?? 0) else {
            throw malformed("needs a value on the stack", at: offset)
        }
        return value
    }

    private func list(at offset: Int) throws -> PickleList {
        guard case .list(let list) = try top(at: offset) else {
            throw malformed("APPEND to a \(try top(at: offset).typeName), not a list", at: offset)
        }
        return list
    }

    private func dict(at offset: Int) throws -> PickleDict {
        guard case .dict(let dict) = try top(at: offset) else {
            throw malformed("SETITEM on a \(try top(at: offset).typeName), not a dict", at: offset)
        }
        return dict
    }

    private func dictKey(_ value: PickleValue, at offset: Int) throws -> PickleDict.Key {
        switch value {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        default: throw unsupported("a dict key of type \(value.typeName) (byte \(offset)) is not supported")
        }
    }

    private func resolve(module: String, name: String) throws -> TorchGlobal {
        if let global = TorchGlobal(module: module, name: name) { return global }
        if module == "torch", name.hasSuffix("Storage") {
            throw unsupported(
                "storage type 'torch.\(name)' is not supported; compeft reads float, half, bfloat16, double, "
                    + "integer and bool storages")
        }
        throw unsupported(
            "pickle uses global '\(module).\(name)', which a tensor state dict never needs; refusing to load "
                + "(compeft never executes pickled code)")
    }

    /// `REDUCE` for the allowed callables only.
    private func reduce(_ callable: PickleValue, _ arguments: PickleValue, at offset: Int) throws -> PickleValue {
        guard case .global(let global) = callable, case .tuple(let args, _) = arguments else {
            throw malformed(
                "REDUCE needs a global and an argument tuple, found \(callable.typeName) and \(arguments.typeName)",
                at: offset)
        }
        func intTuple(_ value: PickleValue, _ what: String) throws -> [Int] {
            guard case .tuple(let items, _) = value else {
                throw malformed("tensor \(what) is a \(value.typeName), not a tuple", at: offset)
            }
            return try items.map {
                guard case .int(let n) = $0 else {
                    throw malformed("tensor \(what) holds a \($0.typeName)", at: offset)
                }
                return n
            }
        }
        func noHooks(_ value: PickleValue) throws {
            guard case .dict(let hooks) = value, hooks.count == 0 else {
                throw unsupported("tensor with backward hooks (byte \(offset)) is not supported")
            }
        }
        switch global {
        case .orderedDict:
            guard args.isEmpty else {
                throw unsupported("OrderedDict built from arguments (byte \(offset)) is not supported")
            }
            return .dict(arena.makeDict())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard args.count == 6 || args.count == 7, case .storage(let storage) = args[0],
                case .int(let storageOffset) = args[1],
                case .bool = args[4]
            else { throw malformed("_rebuild_tensor_v2 with unexpected arguments", at: offset) }
            try noHooks(args[5])
            return .tensor(
                TorchTensorReference(
                    storage: storage, storageOffset: storageOffset, shape: try intTuple(args[2], "size"),
                    stride: try intTuple(args[3], "stride")))
        case .rebuildParameter:
            // (data, requires_grad, backward_hooks)
            guard args.count == 3, case .tensor = args[0], case .bool = args[1] else {
                throw malformed("_rebuild_parameter with unexpected arguments", at: offset)
            }
            try noHooks(args[2])
            return args[0]
        case .storageType:
            throw unsupported(
                "pickle calls \(global.qualifiedName) at byte \(offset); only persistent ids may name storages")
        }
    }

    /// `BINPERSID`: `('storage', storage_type, key, location, numel)`.
    private func persistentLoad(_ pid: PickleValue, at offset: Int) throws -> PickleValue {
        guard case .tuple(let fields, _) = pid, fields.count == 5, case .string("storage") = fields[0] else {
            throw unsupported("persistent id \(pid.typeName) at byte \(offset) is not a torch storage reference")
        }
        guard case .global(.storageType(let dtype, _)) = fields[1], case .string(let key) = fields[2],
            case .string(let location) = fields[3], case .int(let count) = fields[4], count >= 0
        else { throw malformed("storage persistent id has unexpected fields", at: offset) }
        return .storage(TorchStorageReference(dtype: dtype, key: key, location: location, elementCount: count))
    }

    /// An opcode's name, for errors.
    static func describe(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [
            0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
            0x50: "PERSID", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE",
            0x49: "INT", 0x4C: "LONG", 0x8B: "LONG4", 0x46: "FLOAT", 0x32: "DUP", 0x30: "POP", 0x31: "POP_MARK",
            0x67: "GET", 0x70: "PUT", 0x6C: "LIST", 0x64: "DICT", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
            0x8E: "BINBYTES8", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER", 0x8F: "EMPTY_SET",
            0x90: "ADDITEMS", 0x91: "FROZENSET",
        ]
        let hex = String(opcode, radix: 16)
        let code = "0x" + (hex.count < 2 ? "0" + hex : hex)
        return names[opcode].map { "\($0) (\(code))" } ?? code
    }
}
