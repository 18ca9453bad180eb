internal import CHDF5
import Synchronization

// Every libhdf5 call compeft makes lives in this file, like swift-system's `Syscalls.swift`: the
// rest of the HDF5 reader and writer speak Swift types only.
//
// Debian's libhdf5 (the "serial" build) is not thread-safe, so all calls must run inside
// ``HDF5Library/withExclusiveAccess(_:)``; the functions below assume the caller holds it.

/// A libhdf5 call that failed: the function and what HDF5's error stack said about it.
struct HDF5Error: Error, CustomStringConvertible {
    var function: String
    var detail: String

    var description: String { detail.isEmpty ? "\(function) failed" : "\(function) failed: \(detail)" }

    /// The error for `function`, with HDF5's error stack (innermost cause first) as the detail; clears the stack.
    static func current(_ function: String) -> HDF5Error {
        final class Collected { var lines: [String] = [] }
        let collected = Collected()
        let walker: H5E_walk2_t = { _, entry, context in
            guard let entry, let context else { return 0 }
            let box = Unmanaged<Collected>.fromOpaque(context).takeUnretainedValue()
            guard box.lines.count < 4 else { return 0 }
            var text = entry.pointee.desc.map { String(cString: $0) } ?? ""
            var buffer = [CChar](repeating: 0, count: 160)
            if H5Eget_msg(entry.pointee.min_num, nil, &buffer, buffer.count) > 0 {
                let minor = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                text = text.isEmpty ? minor : "\(text) (\(minor))"
            }
            if !text.isEmpty, !box.lines.contains(text) { box.lines.append(text) }
            return 0
        }
        _ = withExtendedLifetime(collected) {
            H5Ewalk2(hid_t(H5E_DEFAULT), H5E_WALK_UPWARD, walker, Unmanaged.passUnretained(collected).toOpaque())
        }
        _ = H5Eclear2(hid_t(H5E_DEFAULT))
        return HDF5Error(function: function, detail: collected.lines.joined(separator: "; "))
    }
}

/// An HDF5 identifier that compeft owns and closes exactly once, in ``close()`` or in `deinit`.
///
/// Predefined datatypes (`H5T_IEEE_F32LE` and friends) belong to the library and are never closed.
struct HDF5Handle: ~Copyable {
    enum Kind { case file, group, dataset, datatype, dataspace, propertyList, predefinedDatatype }

    let id: hid_t
    let kind: Kind

    /// Takes ownership of `id`, or throws the current HDF5 error for `function` if `id` is negative.
    init(_ id: hid_t, kind: Kind, from function: String) throws(HDF5Error) {
        guard id >= 0 else { throw HDF5Error.current(function) }
        self.id = id
        self.kind = kind
    }

    /// A library-owned datatype, never closed.
    init(predefined id: hid_t) {
        self.id = id
        self.kind = .predefinedDatatype
    }

    /// Closes the identifier now and reports a failure (for files this is when buffered data is written).
    ///
    /// The corresponding C functions are `H5Fclose`, `H5Gclose`, `H5Dclose`, `H5Tclose`, `H5Sclose`, `H5Pclose`.
    consuming func close() throws(HDF5Error) {
        let status = Self.close(id, kind)
        let kind = self.kind
        discard self
        guard status >= 0 else { throw HDF5Error.current("\(kind) close") }
    }

    deinit { _ = Self.close(id, kind) }

    private static func close(_ id: hid_t, _ kind: Kind) -> herr_t {
        switch kind {
        case .file: H5Fclose(id)
        case .group: H5Gclose(id)
        case .dataset: H5Dclose(id)
        case .datatype: H5Tclose(id)
        case .dataspace: H5Sclose(id)
        case .propertyList: H5Pclose(id)
        case .predefinedDatatype: 0
        }
    }
}

enum HDF5Library {
    private static let access = Mutex(())

    /// Runs `body` with exclusive use of libhdf5 and with HDF5's automatic error printing turned off
    /// (errors are read from its stack and thrown instead).
    ///
    /// The corresponding C function is `H5Eset_auto2`.
    static func withExclusiveAccess<R: Sendable>(_ body: () throws -> R) throws -> R {
        try access.withLock { _ throws -> R in
            _ = H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
            return try body()
        }
    }

    // MARK: - Files

    /// Whether `path` starts with an HDF5 signature. The corresponding C function is `H5Fis_hdf5`.
    static func isHDF5(path: String) throws(HDF5Error) -> Bool {
        let answer = H5Fis_hdf5(path)
        guard answer >= 0 else { throw HDF5Error.current("H5Fis_hdf5") }
        return answer > 0
    }

    /// Opens an existing file read-only. The corresponding C function is `H5Fopen`.
    static func openReadOnly(path: String) throws(HDF5Error) -> HDF5Handle {
        try HDF5Handle(H5Fopen(path, compeft_H5F_ACC_RDONLY(), hid_t(H5P_DEFAULT)), kind: .file, from: "H5Fopen")
    }

    /// Creates (truncates) a file. The corresponding C function is `H5Fcreate`.
    static func createTruncating(path: String) throws(HDF5Error) -> HDF5Handle {
        try HDF5Handle(
            H5Fcreate(path, compeft_H5F_ACC_TRUNC(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), kind: .file,
            from: "H5Fcreate")
    }

    // MARK: - Traversal

    /// Paths (relative to the root, `/`-separated) of every dataset reachable from the root group
    /// through hard links, each object once, in name order.
    ///
    /// Soft and external links are not followed. A path that is not valid UTF-8 is reported as an
    /// error, as is a file with more than `limit` objects.
    ///
    /// The corresponding C function is `H5Ovisit2`.
    static func datasetPaths(in file: borrowing HDF5Handle, limit: Int) throws(HDF5Error) -> [String] {
        final class Visit {
            var paths: [String] = []
            var objects = 0
            var problem: String?
            let limit: Int
            init(limit: Int) { self.limit = limit }
        }
        let visit = Visit(limit: limit)
        let visitor: H5O_iterate_t = { _, name, info, context in
            guard let name, let info, let context else { return -1 }
            let visit = Unmanaged<Visit>.fromOpaque(context).takeUnretainedValue()
            visit.objects += 1
            if visit.objects > visit.limit {
                visit.problem = "the file holds more than \(visit.limit) objects"
                return 1  // positive: stop iterating without an HDF5 error
            }
            guard info.pointee.type == H5O_TYPE_DATASET else { return 0 }
            guard let path = String(validatingCString: name) else {
                visit.problem = "a dataset path is not valid UTF-8"
                return 1
            }
            visit.paths.append(path)
            return 0
        }
        let status = withExtendedLifetime(visit) {
            H5Ovisit2(
                file.id, H5_INDEX_NAME, H5_ITER_INC, visitor, Unmanaged.passUnretained(visit).toOpaque(),
                UInt32(H5O_INFO_BASIC))
        }
        guard status >= 0 else { throw HDF5Error.current("H5Ovisit2") }
        if let problem = visit.problem { throw HDF5Error(function: "H5Ovisit2", detail: problem) }
        return visit.paths
    }

    // MARK: - Datasets

    /// Opens the dataset at `path` below `file`. The corresponding C function is `H5Dopen2`.
    static func openDataset(_ path: String, in file: borrowing HDF5Handle) throws(HDF5Error) -> HDF5Handle {
        try HDF5Handle(H5Dopen2(file.id, path, hid_t(H5P_DEFAULT)), kind: .dataset, from: "H5Dopen2")
    }

    /// The dataset's stored datatype. The corresponding C function is `H5Dget_type`.
    static func datatype(of dataset: borrowing HDF5Handle) throws(HDF5Error) -> HDF5Handle {
        try HDF5Handle(H5Dget_type(dataset.id), kind: .datatype, from: "H5Dget_type")
    }

    /// The dataset's dataspace. The corresponding C function is `H5Dget_space`.
    static func dataspace(of dataset: borrowing HDF5Handle) throws(HDF5Error) -> HDF5Handle {
        try HDF5Handle(H5Dget_space(dataset.id), kind: .dataspace, from: "H5Dget_space")
    }

    /// Bytes the dataset occupies in the file (after any compression; 0 when nothing was written).
    /// The corresponding C function is `H5Dget_storage_size`.
    static func storageSize(of dataset: borrowing HDF5Handle) -> UInt64 {
        UInt64(H5Dget_storage_size(dataset.id))
    }

    /// Reads the whole dataset, converted to `memoryType`, into `buffer`.
    ///
    /// - Precondition: `buffer` holds exactly the dataset's element count × the memory type's size.
    ///
    /// The corresponding C function is `H5Dread`.
    static func read(
        _ dataset: borrowing HDF5Handle, as memoryType: borrowing HDF5Handle, into buffer: UnsafeMutableRawBufferPointer
    ) throws(HDF5Error) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        let status = H5Dread(dataset.id, memoryType.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), base)
        guard status >= 0 else { throw HDF5Error.current("H5Dread") }
    }

    /// Creates a dataset at `path`, creating missing intermediate groups.
    ///
    /// The corresponding C functions are `H5Pcreate(H5P_LINK_CREATE)`, `H5Pset_create_intermediate_group`
    /// and `H5Dcreate2`.
    static func createDataset(
        _ path: String, in file: borrowing HDF5Handle, type: borrowing HDF5Handle, space: borrowing HDF5Handle
    ) throws(HDF5Error) -> HDF5Handle {
        let linkCreation = try HDF5Handle(
            H5Pcreate(compeft_H5P_LINK_CREATE()), kind: .propertyList, from: "H5Pcreate")
        guard H5Pset_create_intermediate_group(linkCreation.id, 1) >= 0 else {
            throw HDF5Error.current("H5Pset_create_intermediate_group")
        }
        return try HDF5Handle(
            H5Dcreate2(file.id, path, type.id, space.id, linkCreation.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)),
            kind: .dataset, from: "H5Dcreate2")
    }

    /// Writes the whole dataset from `bytes`, whose elements are laid out as `memoryType`.
    /// The corresponding C function is `H5Dwrite`.
    static func write(
        _ dataset: borrowing HDF5Handle, as memoryType: borrowing HDF5Handle, from bytes: UnsafeRawBufferPointer
    ) throws(HDF5Error) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let status = H5Dwrite(dataset.id, memoryType.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), base)
        guard status >= 0 else { throw HDF5Error.current("H5Dwrite") }
    }

    // MARK: - Dataspaces

    /// The shape of a dataspace: `[]` for a scalar, `nil` for a null dataspace (no elements at all).
    ///
    /// The corresponding C functions are `H5Sget_simple_extent_type`, `H5Sget_simple_extent_ndims`
    /// and `H5Sget_simple_extent_dims`.
    static func extent(of space: borrowing HDF5Handle) throws(HDF5Error) -> [UInt64]? {
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_SCALAR: return []
        case H5S_NULL: return nil
        case H5S_SIMPLE: break
        default: throw HDF5Error.current("H5Sget_simple_extent_type")
        }
        let rank = Int(H5Sget_simple_extent_ndims(space.id))
        guard rank >= 0 else { throw HDF5Error.current("H5Sget_simple_extent_ndims") }
        guard rank <= Int(H5S_MAX_RANK) else {
            throw HDF5Error(function: "H5Sget_simple_extent_ndims", detail: "rank \(rank) exceeds H5S_MAX_RANK")
        }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        guard H5Sget_simple_extent_dims(space.id, &dims, nil) >= 0 else {
            throw HDF5Error.current("H5Sget_simple_extent_dims")
        }
        return dims.prefix(rank).map { UInt64($0) }
    }

    /// A scalar dataspace for `shape == []`, a simple one otherwise.
    /// The corresponding C functions are `H5Screate` and `H5Screate_simple`.
    static func createDataspace(shape: [Int]) throws(HDF5Error) -> HDF5Handle {
        if shape.isEmpty {
            return try HDF5Handle(H5Screate(H5S_SCALAR), kind: .dataspace, from: "H5Screate")
        }
        let dims = shape.map { hsize_t($0) }
        return try HDF5Handle(
            H5Screate_simple(Int32(dims.count), dims, nil), kind: .dataspace, from: "H5Screate_simple")
    }

    // MARK: - Datatypes

    /// What a datatype is: class, size, byte order, and for numbers their bit layout.
    ///
    /// The corresponding C functions are `H5Tget_class`, `H5Tget_size`, `H5Tget_order`, `H5Tget_sign`,
    /// `H5Tget_precision`, `H5Tget_offset`, `H5Tget_fields` and `H5Tget_ebias`.
    static func describe(_ type: borrowing HDF5Handle) throws(HDF5Error) -> HDF5TypeDescription {
        let typeClass = H5Tget_class(type.id)
        let size = H5Tget_size(type.id)
        guard typeClass != H5T_NO_CLASS, size > 0 else { throw HDF5Error.current("H5Tget_class") }
        var description = HDF5TypeDescription(kind: .other(Self.className(typeClass)), size: Int(size))
        guard typeClass == H5T_INTEGER || typeClass == H5T_FLOAT else { return description }
        description.order =
            switch H5Tget_order(type.id) {
            case H5T_ORDER_LE: .little
            case H5T_ORDER_BE: .big
            default: .other
            }
        description.precision = Int(H5Tget_precision(type.id))
        description.bitOffset = Int(H5Tget_offset(type.id))
        if typeClass == H5T_INTEGER {
            let sign = H5Tget_sign(type.id)
            guard sign != H5T_SGN_ERROR else { throw HDF5Error.current("H5Tget_sign") }
            description.kind = .integer(signed: sign == H5T_SGN_2)
            return description
        }
        var sign = 0
        var exponent = 0
        var exponentSize = 0
        var mantissa = 0
        var mantissaSize = 0
        guard H5Tget_fields(type.id, &sign, &exponent, &exponentSize, &mantissa, &mantissaSize) >= 0 else {
            throw HDF5Error.current("H5Tget_fields")
        }
        description.kind = .float(
            HDF5FloatLayout(
                signBit: sign, exponentBit: exponent, exponentBits: exponentSize, mantissaBit: mantissa,
                mantissaBits: mantissaSize, exponentBias: Int(H5Tget_ebias(type.id))))
        return description
    }

    /// The little-endian datatype compeft reads and writes `dtype` as, or `nil` for dtypes HDF5 has
    /// no faithful type for (`BOOL`, the 8-bit floats).
    ///
    /// `F32`, `F64` and the integers are HDF5's predefined IEEE and standard types. HDF5 1.10 has no
    /// predefined half-precision or bfloat16 type, so those are built by copying `H5T_IEEE_F32LE`
    /// and setting the bit fields, size and exponent bias (the same recipe h5py uses for `float16`).
    ///
    /// The corresponding C functions are `H5Tcopy`, `H5Tset_fields`, `H5Tset_size`, `H5Tset_precision`
    /// and `H5Tset_ebias`.
    static func littleEndianType(for dtype: DType) throws(HDF5Error) -> HDF5Handle? {
        switch dtype {
        case .f32: return HDF5Handle(predefined: compeft_H5T_IEEE_F32LE())
        case .f64: return HDF5Handle(predefined: compeft_H5T_IEEE_F64LE())
        case .i8: return HDF5Handle(predefined: compeft_H5T_STD_I8LE())
        case .i16: return HDF5Handle(predefined: compeft_H5T_STD_I16LE())
        case .i32: return HDF5Handle(predefined: compeft_H5T_STD_I32LE())
        case .i64: return HDF5Handle(predefined: compeft_H5T_STD_I64LE())
        case .u8: return HDF5Handle(predefined: compeft_H5T_STD_U8LE())
        case .u16: return HDF5Handle(predefined: compeft_H5T_STD_U16LE())
        case .u32: return HDF5Handle(predefined: compeft_H5T_STD_U32LE())
        case .u64: return HDF5Handle(predefined: compeft_H5T_STD_U64LE())
        case .f16: return try customFloat(.ieeeHalf)
        case .bf16: return try customFloat(.bfloat16)
        case .bool, .f8e4m3, .f8e5m2: return nil
        }
    }

    private static func customFloat(_ layout: HDF5FloatLayout) throws(HDF5Error) -> HDF5Handle {
        let type = try HDF5Handle(H5Tcopy(compeft_H5T_IEEE_F32LE()), kind: .datatype, from: "H5Tcopy")
        guard
            H5Tset_fields(
                type.id, layout.signBit, layout.exponentBit, layout.exponentBits, layout.mantissaBit,
                layout.mantissaBits) >= 0
        else { throw HDF5Error.current("H5Tset_fields") }
        guard H5Tset_size(type.id, 2) >= 0 else { throw HDF5Error.current("H5Tset_size") }
        guard H5Tset_precision(type.id, 16) >= 0 else { throw HDF5Error.current("H5Tset_precision") }
        guard H5Tset_ebias(type.id, layout.exponentBias) >= 0 else { throw HDF5Error.current("H5Tset_ebias") }
        return type
    }

    private static func className(_ typeClass: H5T_class_t) -> String {
        switch typeClass {
        case H5T_INTEGER: "integer"
        case H5T_FLOAT: "float"
        case H5T_TIME: "time"
        case H5T_STRING: "string"
        case H5T_BITFIELD: "bitfield"
        case H5T_OPAQUE: "opaque"
        case H5T_COMPOUND: "compound"
        case H5T_REFERENCE: "reference"
        case H5T_ENUM: "enum"
        case H5T_VLEN: "variable-length"
        case H5T_ARRAY: "array"
        default: "class \(typeClass.rawValue)"
        }
    }
}
