import Quantize
import TaskVector

/// A format 1.1 index as read: its JSON form, the verbatim files stored inside it, and the tensors and
/// files a reader must refuse because they carry a critical field it does not know.
struct DecodedIndex {
    var index: ContainerIndex
    /// Contents of the files stored inside the index, by name.
    var inlineFiles: [String: [UInt8]]
    /// Why a tensor (by name) cannot be decoded by this compeft.
    var refusedTensors: [String: String]
    /// Why a verbatim file (by name) cannot be restored by this compeft.
    var refusedFiles: [String: String]
}

/// The binary index of format 1.1 (docs/FORMAT.md, "Index, format 1.1"): what is written, and how it
/// is read back into the JSON form with every offset, count and raw length derived and checked.
extension ContainerIndex {
    /// The index body (before its codec byte) for this index.
    ///
    /// Fields that the reader derives are written only where the derivation would give another value
    /// (the group's counts, a tensor's scale, `sources`), so reading the body back gives this index.
    ///
    /// - Parameter inlineFiles: the contents of the files marked `inline`, by name.
    /// - Precondition: tensors in strictly increasing name order (bytewise); every payload's `xxh64` is 8
    ///   hex digits (the low 32 bits of its XXH64).
    func binaryBody(inlineFiles: [String: [UInt8]]) -> [UInt8] {
        var w = BinaryIndexWriter()
        w.string(tool)
        w.string(inputKind)
        w.string(compression.method)
        w.string(compression.scope)
        w.f64(compression.density)
        if compression.alphaRequested == "auto" {
            w.f64(0)
        } else {
            guard let alpha = Double(compression.alphaRequested) else { preconditionFailure("α '\(compression.alphaRequested)' is not a number") }
            w.f64(alpha)
        }
        let g = compression
        let groupScaleBits = g.total == nil ? nil : (g.scale ?? 0).bitPattern
        if let total = g.total, let kept = g.keptCount, let nonzero = g.keptNonzero {
            let sums = Self.residualSums(tensors)
            if sums.map({ $0 == (total, kept, nonzero) }) == true {
                w.u8(IndexFields.Group.summed)
            } else {
                w.u8(IndexFields.Group.counted)
                w.uvarint(total)
                w.uvarint(kept)
                w.uvarint(nonzero)
            }
            w.u32((g.threshold ?? 0).bitPattern)
            w.f64(g.sigma ?? 0)
            w.u32(groupScaleBits ?? 0)
        } else {
            w.u8(IndexFields.Group.none)
        }
        if let peftType { w.field(IndexFields.Container.peftType, Array(peftType.utf8)) }
        if let v = g.scaleScope { w.field(IndexFields.Container.scaleScope, Array(v.utf8)) }
        if let v = g.loraGauge { w.field(IndexFields.Container.loraGauge, Array(v.utf8)) }
        if let v = g.loraGaugeRequested { w.field(IndexFields.Container.loraGaugeRequested, Array(v.utf8)) }
        let outputFiles = Self.outputFileNames(tensors: tensors, metadata: fileMetadata)
        if sources != files.map(\.name) + outputFiles {
            w.field(IndexFields.Container.sources) { v in
                for s in sources { v.string(s) }
            }
        }
        w.endFields()

        w.uvarint(outputFiles.count)
        for name in outputFiles {
            w.string(name)
            let metadata = fileMetadata[name] ?? [:]
            w.uvarint(metadata.count)
            for key in metadata.keys.sorted(by: Self.bytewise) {
                w.string(key)
                w.string(metadata[key]!)
            }
        }

        w.uvarint(files.count)
        for f in files {
            w.string(f.name)
            if f.inline == true {
                w.u8(0)
                let contents = inlineFiles[f.name]!
                w.uvarint(contents.count)
                w.raw(contents)
            } else {
                w.u8(IndexFields.FileFlag.payload)
                w.uvarint(f.rawLength)
                w.uvarint(f.length)
                w.u32(Self.checksum32(f.xxh64 ?? ""))
            }
        }

        w.uvarint(tensors.count)
        let fileNumber = Dictionary(uniqueKeysWithValues: outputFiles.enumerated().map { ($1, $0) })
        var previous: [UInt8] = []
        for t in tensors {
            let name = Array(t.name.utf8)
            precondition(previous.isEmpty || previous.lexicographicallyPrecedes(name), "tensor names must increase: '\(t.name)'")
            let shared = zip(previous, name).prefix { $0 == $1 }.count
            w.uvarint(shared)
            w.uvarint(name.count - shared)
            w.raw(name[shared...])
            previous = name

            var fields = BinaryIndexWriter()
            let derivedScale = Self.derivedScaleBits(encoding: t.encoding, groupScaleBits: groupScaleBits)
            if derivedScale != t.scaleBits { fields.field(IndexFields.Tensor.scale) { $0.u32(t.scaleBits) } }
            if let note = t.note { fields.field(IndexFields.Tensor.note, Array(note.utf8)) }
            if let sigma = t.sigma { fields.field(IndexFields.Tensor.sigma) { $0.f64(sigma) } }
            if t.encoding != PayloadEncoding.raw.rawValue, t.kept > t.nonzero {
                fields.field(IndexFields.Tensor.zerosKept) { $0.uvarint(t.kept - t.nonzero) }
            }

            var flags = UInt8(IndexFields.initRules.firstIndex(of: t.initRule)!)
            if t.role == .exact { flags |= IndexFields.TensorFlag.exact }
            if !fields.bytes.isEmpty { flags |= IndexFields.TensorFlag.hasFields }
            w.u8(flags)
            w.u8(UInt8(IndexFields.dtypes.firstIndex(of: t.dtype)!))
            w.uvarint(t.shape.count)
            for d in t.shape { w.uvarint(d) }
            if outputFiles.count > 1 { w.uvarint(fileNumber[t.file]!) }
            w.uvarint(t.encoding)
            if t.encoding != PayloadEncoding.raw.rawValue { w.uvarint(t.nonzero) }
            w.uvarint(t.length)
            w.u32(Self.checksum32(t.xxh64))
            if !fields.bytes.isEmpty {
                w.raw(fields.bytes)
                w.endFields()
            }
        }
        return w.bytes
    }

    /// Reads an index body whose payloads lie back to back in `payloadArea`, verbatim files first.
    ///
    /// - Throws: ``BinaryIndexError`` for any field that is truncated, out of range or inconsistent
    ///   (`unsupported` for what a newer writer may use: an unknown dtype, flag bit or critical
    ///   container field).
    static func decodeBinary(_ body: [UInt8], payloadArea: Range<Int>) throws(BinaryIndexError) -> DecodedIndex {
        var r = BinaryIndexReader(body)
        let tool = try r.string("the writer's name")
        let inputKind = try r.string("the input kind")
        let method = try r.string("the method")
        let scope = try r.string("the scope")
        let density = try r.finiteF64("the density")
        guard density > 0, density <= 100 else { throw BinaryIndexError("density \(density) is not a percentage in (0, 100]") }
        let alphaRequested = try r.finiteF64("the requested α")
        guard alphaRequested >= 0 else { throw BinaryIndexError("requested α \(alphaRequested) is negative") }
        var compression = Compression(method: method, scope: scope, density: density,
                                      alphaRequested: alphaRequested == 0 ? "auto" : String(alphaRequested))
        let groupKind = try r.u8("the group byte")
        var groupScaleBits: UInt32?
        switch groupKind {
        case IndexFields.Group.none:
            break
        case IndexFields.Group.counted, IndexFields.Group.summed:
            if groupKind == IndexFields.Group.counted {
                let total = try r.uvarint("the group's value count")
                let kept = try r.uvarint("the group's kept count", atMost: total)
                let nonzero = try r.uvarint("the group's non-zero count", atMost: kept)
                (compression.total, compression.keptCount, compression.keptNonzero) = (total, kept, nonzero)
            }
            let threshold = Float(bitPattern: try r.f32Bits("the group's threshold"))
            let sigma = try r.finiteF64("the group's σ")
            let scaleBits = try r.f32Bits("the group's scale")
            guard threshold.isFinite, Float(bitPattern: scaleBits).isFinite, sigma >= 0 else {
                throw BinaryIndexError("the group's threshold, σ or scale is not a finite, non-negative number")
            }
            compression.threshold = threshold
            compression.sigma = sigma
            compression.scale = Float(bitPattern: scaleBits)
            compression.alpha = sigma > 0 ? Double(Float(bitPattern: scaleBits)) / sigma : 0
            groupScaleBits = scaleBits
        default:
            throw BinaryIndexError("group byte \(groupKind) is not known to this compeft", unsupported: true)
        }

        var peftType: String?
        var sources: [String]?
        for (tag, value) in try r.taggedFields("the container") {
            switch tag {
            case IndexFields.Container.peftType:
                peftType = try r.utf8(value, "the peft_type field")
            case IndexFields.Container.scaleScope:
                compression.scaleScope = try r.utf8(value, "the scale scope field")
            case IndexFields.Container.loraGauge:
                compression.loraGauge = try r.utf8(value, "the LoRA gauge field")
            case IndexFields.Container.loraGaugeRequested:
                compression.loraGaugeRequested = try r.utf8(value, "the requested LoRA gauge field")
            case IndexFields.Container.sources:
                sources = try BinaryIndexReader.parse(value, "the sources field") { v throws(BinaryIndexError) in
                    var list: [String] = []
                    while !v.isAtEnd { list.append(try v.string("a source name")) }
                    return list
                }
            case let t where IndexFields.isCritical(t):
                throw BinaryIndexError("container field \(t) is not known to this compeft (written by a newer version?)", unsupported: true)
            default:
                continue
            }
        }

        // Under a scale rule of its own every tensor has its scale; the group's (written as 0) is no one's.
        if compression.scaleScope != nil, groupScaleBits != nil {
            compression.scale = nil
            compression.alpha = nil
        }

        // Output files and their safetensors metadata.
        typealias Limit = IndexFields.Limit
        let outputCount = try r.uvarint("the number of output files", atMost: min(r.remaining, Limit.files))
        var outputFiles: [String] = []
        var fileMetadata: [String: [String: String]] = [:]
        for _ in 0..<outputCount {
            let name = try r.string("an output file name")
            guard !outputFiles.contains(name) else { throw BinaryIndexError("output file '\(name)' is listed twice") }
            let pairs = try r.uvarint("the metadata count of '\(name)'", atMost: min(r.remaining, Limit.metadataPairs))
            var metadata: [String: String] = [:]
            for _ in 0..<pairs {
                let key = try r.string("a metadata key of '\(name)'")
                let value = try r.string("a metadata value of '\(name)'")
                guard metadata.updateValue(value, forKey: key) == nil else {
                    throw BinaryIndexError("metadata key '\(key)' of '\(name)' appears twice")
                }
            }
            outputFiles.append(name)
            if !metadata.isEmpty { fileMetadata[name] = metadata }
        }

        // Verbatim files: inside the index, or the first payloads.
        var offset = payloadArea.lowerBound
        func place(_ length: Int, _ what: String) throws(BinaryIndexError) -> Int {
            let start = offset
            guard length <= payloadArea.upperBound - offset else {
                throw BinaryIndexError("\(what)'s payload (\(length) bytes at \(offset)) runs past the payload area, which ends at \(payloadArea.upperBound)")
            }
            offset += length
            return start
        }
        let fileCount = try r.uvarint("the number of verbatim files", atMost: min(r.remaining, Limit.files))
        var files: [File] = []
        var inlineFiles: [String: [UInt8]] = [:]
        var refusedFiles: [String: String] = [:]
        for _ in 0..<fileCount {
            let name = try r.string("a verbatim file name")
            let flags = try r.u8("the flags of file '\(name)'")
            guard flags & IndexFields.FileFlag.reserved == 0 else {
                throw BinaryIndexError("file '\(name)' uses flag bits \(flags) this compeft does not know", unsupported: true)
            }
            let rawLength = try r.uvarint("the length of file '\(name)'")
            if flags & IndexFields.FileFlag.payload != 0 {
                let length = try r.uvarint("the stored length of file '\(name)'")
                let checksum = try r.u32("the checksum of file '\(name)'")
                files.append(File(name: name, offset: try place(length, "file '\(name)'"), length: length, rawLength: rawLength,
                                  xxh64: Self.hex32(checksum)))
            } else {
                inlineFiles[name] = Array(try r.bytes(rawLength, "file '\(name)'"))
                files.append(File(name: name, offset: 0, length: 0, rawLength: rawLength, xxh64: nil, inline: true))
            }
            if flags & IndexFields.FileFlag.hasFields != 0 {
                for (tag, _) in try r.taggedFields("file '\(name)'") where IndexFields.isCritical(tag) {
                    refusedFiles[name] = "field \(tag) is not known to this compeft (written by a newer version?)"
                }
            }
        }

        // Tensors.
        let tensorCount = try r.uvarint("the number of tensors", atMost: min(r.remaining, Limit.tensors))
        var nameBytes = 0
        var tensors: [Tensor] = []
        var refusedTensors: [String: String] = [:]
        var previous: [UInt8] = []
        var current: [UInt8] = []
        // Dimensions are read into `dims`; a shape met before is shared rather than stored again (a model
        // has a few distinct shapes, and an array per tensor is 48 bytes of a million-tensor index).
        var dims: [Int] = []
        var shapes: [[Int]: [Int]] = [:]
        tensors.reserveCapacity(min(tensorCount, r.remaining / 10))  // an entry holds at least 10 bytes
        for i in 0..<tensorCount {
            // Spelled out only for an error message: most tensors never need it.
            func after() -> String { i == 0 ? "the first tensor" : "the tensor after '\(String(decoding: previous, as: UTF8.self))'" }
            let shared = try r.uvarint("the shared name length of \(after())", atMost: previous.count)
            let suffixLength = try r.uvarint("the name length of \(after())", atMost: Limit.nameLength - shared)
            let suffix = try r.bytes(suffixLength, "the name of \(after())")
            nameBytes += shared + suffixLength
            guard nameBytes <= Limit.nameBytes else {
                throw BinaryIndexError("the tensor names hold more than \(Limit.nameBytes) bytes together")
            }
            // Built in a buffer reused from tensor to tensor (the two swap below).
            current.removeAll(keepingCapacity: true)
            current.append(contentsOf: previous[..<shared])
            current.append(contentsOf: suffix)
            let name = try r.utf8(current[...], "the name of \(after())")
            guard !current.isEmpty, i == 0 || previous.lexicographicallyPrecedes(current) else {
                throw BinaryIndexError("tensor names must be non-empty and in increasing order", tensor: name)
            }
            swap(&previous, &current)
            func fail(_ message: String, unsupported: Bool = false) -> BinaryIndexError {
                BinaryIndexError(message, tensor: name, unsupported: unsupported)
            }

            let flags = try r.u8("the flags of '\(name)'")
            guard flags & IndexFields.TensorFlag.reserved == 0 else {
                throw fail("uses flag bits \(flags) this compeft does not know", unsupported: true)
            }
            let initCode = Int(flags & IndexFields.TensorFlag.initRuleMask)
            guard initCode < IndexFields.initRules.count else { throw fail("init rule \(initCode) is not known", unsupported: true) }
            let dtypeCode = Int(try r.u8("the dtype of '\(name)'"))
            guard dtypeCode < IndexFields.dtypes.count else { throw fail("dtype code \(dtypeCode) is not known to this compeft", unsupported: true) }
            let rank = try r.uvarint("the rank of '\(name)'", atMost: Limit.rank)
            dims.removeAll(keepingCapacity: true)
            for _ in 0..<rank { dims.append(try r.uvarint("a dimension of '\(name)'")) }
            let shape: [Int]
            if let known = shapes[dims] {
                shape = known
            } else {
                shape = Array(dims)
                if shapes.count < Self.sharedShapeLimit { shapes[shape] = shape }
            }
            guard let count = checkedElementCount(shape) else { throw fail("shape \(shape) overflows") }
            let file: Int
            if outputFiles.count > 1 {
                file = try r.uvarint("the output file of '\(name)'", atMost: outputFiles.count - 1)
            } else {
                guard outputFiles.count == 1 else { throw fail("the container lists no output file for its tensors") }
                file = 0
            }
            let encoding = try r.uvarint("the encoding of '\(name)'")
            let isRaw = encoding == PayloadEncoding.raw.rawValue
            let nonzero = try isRaw ? 0 : r.uvarint("the non-zero count of '\(name)'", atMost: count)
            let length = try r.uvarint("the stored length of '\(name)'")
            let checksum = try r.u32("the checksum of '\(name)'")

            var scaleBits = Self.derivedScaleBits(encoding: encoding, groupScaleBits: groupScaleBits)
            var note: String?
            var sigma: Double?
            var zerosKept = 0
            if flags & IndexFields.TensorFlag.hasFields != 0 {
                for (tag, value) in try r.taggedFields("'\(name)'") {
                    switch tag {
                    case IndexFields.Tensor.scale:
                        scaleBits = try BinaryIndexReader.parse(value, "the scale of '\(name)'") { v throws(BinaryIndexError) in
                            try v.f32Bits("the scale")
                        }
                    case IndexFields.Tensor.note:
                        note = try r.utf8(value, "the note of '\(name)'")
                    case IndexFields.Tensor.sigma:
                        sigma = try BinaryIndexReader.parse(value, "σ of '\(name)'") { v throws(BinaryIndexError) in
                            try v.finiteF64("σ")
                        }
                    case IndexFields.Tensor.zerosKept:
                        zerosKept = try BinaryIndexReader.parse(value, "the kept zeros of '\(name)'") { v throws(BinaryIndexError) in
                            try v.uvarint("the kept zeros", atMost: count - nonzero)
                        }
                    case let t where IndexFields.isCritical(t):
                        refusedTensors[name] = "field \(t) is not known to this compeft (written by a newer version?)"
                    default:
                        continue
                    }
                }
            }
            guard let scaleBits else { throw fail("a ternary tensor needs a scale: it has none, and the container has no group") }
            let dtype = IndexFields.dtypes[dtypeCode]
            let rawLength: Int
            if let known = PayloadEncoding(rawValue: encoding) {
                if known == .ternaryGap {
                    rawLength = length
                } else {
                    guard let n = PayloadEncoding.rawLength(known, count: count, nonzero: nonzero, dtype: dtype) else {
                        throw fail("payload of \(count) values overflows")
                    }
                    rawLength = n
                }
            } else {
                rawLength = 0
            }
            let scale = Float(bitPattern: scaleBits)
            tensors.append(Tensor(
                name: name, file: outputFiles[file], dtype: dtype, shape: shape,
                role: flags & IndexFields.TensorFlag.exact != 0 ? .exact : .residual,
                initRule: IndexFields.initRules[initCode], note: note, encoding: encoding, count: count,
                kept: isRaw ? count : nonzero + zerosKept, nonzero: nonzero, scaleBits: scaleBits, scale: scale,
                sigma: sigma, alpha: sigma.map { $0 > 0 ? Double(scale) / $0 : 0 },
                offset: try place(length, "tensor '\(name)'"), length: length, rawLength: rawLength, xxh64: Self.hex32(checksum)))
        }
        guard r.isAtEnd else { throw BinaryIndexError("\(r.remaining) bytes follow the last tensor in the index") }
        guard offset == payloadArea.upperBound else {
            throw BinaryIndexError("the payloads end at byte \(offset), but the index starts at \(payloadArea.upperBound)")
        }
        if groupKind == IndexFields.Group.summed {
            guard let sums = residualSums(tensors) else { throw BinaryIndexError("the group's counts overflow") }
            (compression.total, compression.keptCount, compression.keptNonzero) = sums
        }
        if let total = compression.total {
            compression.keepTarget = Density.percent(density).keepCount(of: total)  // density was checked above
            compression.rank = total - compression.keepTarget!
        }
        let index = ContainerIndex(
            tool: tool, inputKind: inputKind, peftType: peftType, sources: sources ?? files.map(\.name) + outputFiles,
            compression: compression, fileMetadata: fileMetadata, files: files, tensors: tensors)
        return DecodedIndex(index: index, inlineFiles: inlineFiles, refusedTensors: refusedTensors, refusedFiles: refusedFiles)
    }

    /// The most distinct shapes ``decodeBinary(_:payloadArea:)`` shares between tensors.
    static let sharedShapeLimit = 4096

    /// The scale a tensor has when it carries none of its own: the group's for the ternary encodings
    /// (`nil` without a group), 0 for every other encoding.
    private static func derivedScaleBits(encoding: Int, groupScaleBits: UInt32?) -> UInt32? {
        encoding == PayloadEncoding.ternaryBitmap.rawValue || encoding == PayloadEncoding.ternaryGap.rawValue ? groupScaleBits : 0
    }

    /// Σ `count`, Σ `kept` and Σ `nonzero` over the residual tensors; `nil` on overflow.
    private static func residualSums(_ tensors: [Tensor]) -> (Int, Int, Int)? {
        var sums = (0, 0, 0)
        for t in tensors where t.role == .residual {
            let a = sums.0.addingReportingOverflow(t.count)
            let b = sums.1.addingReportingOverflow(t.kept)
            let c = sums.2.addingReportingOverflow(t.nonzero)
            guard !a.overflow, !b.overflow, !c.overflow else { return nil }
            sums = (a.partialValue, b.partialValue, c.partialValue)
        }
        return sums
    }

    /// The output files a format 1.1 index lists: every tensor's file and every file with metadata, bytewise.
    private static func outputFileNames(tensors: [Tensor], metadata: [String: [String: String]]) -> [String] {
        Set(tensors.map(\.file)).union(metadata.keys).sorted(by: bytewise)
    }

    private static func bytewise(_ a: String, _ b: String) -> Bool {
        a.utf8Precedes(b)
    }

    /// The low 32 bits of a checksum spelled in hex (8 or 16 digits).
    static func checksum32(_ hex: String) -> UInt32 {
        guard let value = UInt64(hex, radix: 16) else { preconditionFailure("checksum '\(hex)' is not hex") }
        return UInt32(truncatingIfNeeded: value)
    }

    /// A 32-bit checksum as 8 lowercase hex digits.
    static func hex32(_ value: UInt32) -> String {
        XXH64.hex(UInt64(value), digits: 8)
    }
}
