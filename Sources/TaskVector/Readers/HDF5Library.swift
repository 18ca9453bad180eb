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

    /// Runs `body` with exclusive use of libhdf5, with HDF5's automatic error printing turned off
    /// (errors are read from its stack and thrown instead) and dynamically loaded filter plugins off.
    ///
    /// The corresponding C functions are `H5Eset_auto2` and `H5PLset_loading_state`.
    static func withExclusiveAccess<R: Sendable>(_ body: () throws -> R) throws -> R {
        try access.withLock { _ throws -> R in
            _ = H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
            // A file names its filters by number, and libhdf5 would load any matching plugin library
            // found on HDF5_PLUGIN_PATH to decode them: read only what the library has built in.
            _ = H5PLset_loading_state(0)
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

    /// Why a walk stopped before visiting every object.
    enum WalkProblem: Error {
        /// More than the allowed number of objects.
        case tooManyObjects(limit: Int)
        /// A group below `path` (`/`-separated, from the root) would lie deeper than `limit` levels.
        case tooDeep(path: String, limit: Int)
        /// A link name that is not valid UTF-8, in the group at `path`.
        case invalidName(group: String)
        /// libhdf5 failed.
        case library(HDF5Error)
    }

    /// Paths (relative to the root, `/`-separated) of every dataset reachable from the root group
    /// through hard links, each object once (under its first path), depth first in name order.
    ///
    /// Soft, external and user-defined links are not followed: an external link names another file,
    /// and reading it would put that file's bytes into the output.
    ///
    /// The walk lists each group's links itself (`H5Literate`) and looks children up relative to their
    /// open parent group, so its cost grows linearly with the number of objects (libhdf5's `H5Ovisit2`
    /// resolves each object from the root, which costs the square of the depth on a deep file).
    /// Objects reached again through another hard link, including a link back to an ancestor, are
    /// recognized by their address and not entered twice.
    ///
    /// - Parameters:
    ///   - objectLimit: the most objects (groups, datasets, named types) visited.
    ///   - depthLimit: the deepest group entered: the root's children are at depth 1, so datasets lie at
    ///     most `depthLimit` groups below the root.
    ///
    /// The corresponding C functions are `H5Literate`, `H5Oget_info_by_name2` and `H5Gopen2`.
    static func datasetPaths(in file: borrowing HDF5Handle, objectLimit: Int, depthLimit: Int) throws(WalkProblem)
        -> [String]
    {
        final class Walk {
            var paths: [String] = []
            var objects = 0
            var visited: Set<haddr_t> = []
            /// The hard links of the group being listed.
            var links: [(name: String, address: haddr_t)] = []
            var invalidName = false
            let objectLimit: Int
            init(objectLimit: Int) { self.objectLimit = objectLimit }
        }
        let walk = Walk(objectLimit: objectLimit)
        var root = H5O_info_t()
        guard H5Oget_info_by_name2(file.id, "/", &root, UInt32(H5O_INFO_BASIC), hid_t(H5P_DEFAULT)) >= 0 else {
            throw .library(HDF5Error.current("H5Oget_info_by_name2"))
        }
        walk.visited.insert(root.addr)

        let collect: H5L_iterate_t = { _, name, info, context in
            guard let name, let info, let context else { return -1 }
            let walk = Unmanaged<Walk>.fromOpaque(context).takeUnretainedValue()
            guard info.pointee.type == H5L_TYPE_HARD else { return 0 }
            guard let text = String(validatingCString: name) else {
                walk.invalidName = true
                return 1  // positive: stop iterating without an HDF5 error
            }
            walk.links.append((text, info.pointee.u.address))
            // Links to objects already seen are not objects, but a group of 10⁹ links must not be listed whole.
            return walk.links.count > walk.objectLimit ? 1 : 0
        }

        func visit(_ group: borrowing HDF5Handle, prefix: String, depth: Int) throws(WalkProblem) {
            walk.links = []
            walk.invalidName = false
            var position: hsize_t = 0
            let status = withExtendedLifetime(walk) {
                H5Literate(group.id, H5_INDEX_NAME, H5_ITER_INC, &position, collect,
                           Unmanaged.passUnretained(walk).toOpaque())
            }
            guard status >= 0 else { throw .library(HDF5Error.current("H5Literate")) }
            if walk.invalidName { throw .invalidName(group: prefix.isEmpty ? "/" : "/" + prefix) }
            let links = walk.links
            for link in links where walk.visited.insert(link.address).inserted {
                walk.objects += 1
                guard walk.objects <= walk.objectLimit else { throw .tooManyObjects(limit: walk.objectLimit) }
                var info = H5O_info_t()
                guard H5Oget_info_by_name2(group.id, link.name, &info, UInt32(H5O_INFO_BASIC), hid_t(H5P_DEFAULT)) >= 0
                else { throw .library(HDF5Error.current("H5Oget_info_by_name2")) }
                let path = prefix + link.name
                switch info.type {
                case H5O_TYPE_DATASET:
                    walk.paths.append(path)
                case H5O_TYPE_GROUP:
                    guard depth < depthLimit else { throw .tooDeep(path: path, limit: depthLimit) }
                    let child: HDF5Handle
                    do {
                        child = try HDF5Handle(H5Gopen2(group.id, link.name, hid_t(H5P_DEFAULT)), kind: .group, from: "H5Gopen2")
                    } catch {
                        throw .library(error)
                    }
                    try visit(child, prefix: path + "/", depth: depth + 1)
                default:
                    break  // named datatypes
                }
            }
        }
        try visit(file, prefix: "", depth: 0)
        return walk.paths
    }

    /// Where a dataset keeps values outside the file it is in, if it does.
    enum ForeignStorage {
        /// External storage (`H5Pset_external`): raw values in `count` other files, the first `file`.
        case external(file: String, count: Int)
        /// A virtual dataset (`H5D_VIRTUAL`): `count` mappings, the first onto `dataset` in `file`
        /// (`.` is the file itself).
        case virtual(file: String, dataset: String, count: Int)
    }

    /// Whether `dataset` keeps its values in other files: external storage or a virtual dataset.
    ///
    /// Reads only the dataset's creation properties, which libhdf5 holds once the dataset is open;
    /// nothing here opens the files they name (`H5Dget_space` on a virtual dataset of unlimited
    /// extent would: call this first).
    ///
    /// The corresponding C functions are `H5Dget_create_plist`, `H5Pget_layout`, `H5Pget_virtual_count`,
    /// `H5Pget_virtual_filename`, `H5Pget_virtual_dsetname`, `H5Pget_external_count` and `H5Pget_external`.
    static func foreignStorage(of dataset: borrowing HDF5Handle) throws(HDF5Error) -> ForeignStorage? {
        let creation = try HDF5Handle(H5Dget_create_plist(dataset.id), kind: .propertyList, from: "H5Dget_create_plist")
        let layout = H5Pget_layout(creation.id)
        guard layout != H5D_LAYOUT_ERROR else { throw HDF5Error.current("H5Pget_layout") }
        if layout == H5D_VIRTUAL {
            var count = 0
            guard H5Pget_virtual_count(creation.id, &count) >= 0 else { throw HDF5Error.current("H5Pget_virtual_count") }
            func text(_ get: (UnsafeMutablePointer<CChar>?, Int) -> Int) -> String {
                let length = get(nil, 0)
                guard length > 0 else { return "?" }
                var buffer = [CChar](repeating: 0, count: min(length, 4096) + 1)
                _ = get(&buffer, buffer.count)
                return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            let file = count > 0 ? text { H5Pget_virtual_filename(creation.id, 0, $0, $1) } : "?"
            let source = count > 0 ? text { H5Pget_virtual_dsetname(creation.id, 0, $0, $1) } : "?"
            return .virtual(file: file, dataset: source, count: count)
        }
        let externals = H5Pget_external_count(creation.id)
        guard externals >= 0 else { throw HDF5Error.current("H5Pget_external_count") }
        guard externals > 0 else { return nil }
        var name = [CChar](repeating: 0, count: 4097)
        var offset: off_t = 0
        var size: hsize_t = 0
        guard H5Pget_external(creation.id, 0, name.count - 1, &name, &offset, &size) >= 0 else {
            throw HDF5Error.current("H5Pget_external")
        }
        let file = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return .external(file: file, count: Int(externals))
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
