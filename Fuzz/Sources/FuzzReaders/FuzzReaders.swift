import Glibc
import AdapterFormat
import Quantize
import TaskVector

/// One libFuzzer entry point for every hostile-input parser: the first byte picks the target, the
/// rest is the file. Every input must either parse or throw; a crash, hang or huge allocation is a bug.
///
/// - 0: safetensors reader (header, offsets, dtypes)
/// - 1: container reader, then every payload's checksum and decode
/// - 2: PyTorch `.bin` (zip + restricted unpickler)
/// - 3: the gap coder alone: u32 count, u32 nonzero, then the stream (decoded to a code and to bf16)
/// - 4: a format 1.1 index body behind a valid checksum: u16 payload-area length P, P payload bytes, then
///   the body (stored with codec 0), sealed into a container and read as in 1 — the checksum that keeps
///   mutations of whole files away from the index parser is recomputed here
/// - 5: a container changed field by field in its decoded index and payloads, then sealed again
///   (`SealedContainer.swift`)
/// - 6: a `torch.save` pickle in an archive built here with correct CRC-32s (`PickleArchive.swift`)
/// - 7: an HDF5 file written by libhdf5, its checksummed metadata sealed again (`HDF5Structure.swift`), read
///   by libhdf5 in this process; runs only with `COMPEFT_FUZZ_TARGET=7` (libhdf5 crashes on some of its
///   inputs; see Fuzz/README.md)
/// - 8: the same files read as compeft reads them, in the helper process `compeft-hdf5-reader`: a crash of
///   libhdf5 must come back as an error; only with `COMPEFT_FUZZ_TARGET=8` (no selector byte maps to it)
///
/// Targets 6–8 have structure-aware mutators (``fuzzMutate(_:_:_:_:)``). `COMPEFT_FUZZ_TARGET=N` in the
/// environment runs target N alone, whatever the first byte says (to count one target's executions).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    switch forcedTarget ?? data[0] % 8 {
    case 0:
        if let f = try? SafeTensorsFile(file: MappedFile(path: "fuzz.safetensors", contents: body)) {
            for t in f.tensors where t.dtype.isFloatingPoint && t.count <= 1 << 16 {
                var v = [Float](repeating: 0, count: t.count)
                v.withUnsafeMutableBufferPointer { f.data(of: t).loadFloats(from: 0, into: $0) }
            }
        }
    case 1:
        readContainer(Array(body))
    case 4:
        guard body.count >= 2 else { return 0 }
        let payloads = min(Int(body[0]) | Int(body[1]) << 8, body.count - 2)
        var preamble = ContainerLayout.magic
        preamble += [1, 0, 1, 0]  // version 1.1
        let index = [0] + Array(body[(2 + payloads)...])  // codec 0: the body as it is
        let length = withUnsafeBytes(of: UInt32(index.count).littleEndian, Array.init)
        let check = UInt32(truncatingIfNeeded: XXH64.hash(preamble + length))
        let trailer = length + withUnsafeBytes(of: check.littleEndian, Array.init)
            + withUnsafeBytes(of: XXH64.hash(index).littleEndian, Array.init) + Array("CPFT".utf8)
        readContainer(preamble + Array(body[2..<(2 + payloads)]) + index + trailer)
    case 5:
        fuzzSealedContainer(body)
    case 6:
        fuzzPickleArchive(body)
    case 7:
        // Only when asked for: libhdf5 1.10.8 itself crashes on files this target makes within a few hundred
        // executions (Fuzz/README.md), which would stop every other target's run.
        if forcedTarget == 7 { fuzzHDF5(body) }
    case 8:
        fuzzHDF5Isolated(body)
    case 2:
        _ = try? TorchBinReader.load(file: MappedFile(path: "fuzz.bin", contents: body))
    default:
        guard body.count >= 8 else { return 0 }
        let raw = UnsafeRawBufferPointer(body)
        let count = Int(raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian) & ((1 << 20) - 1)
        let nonzero = Int(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian) % (count + 1)
        let stream = UnsafeRawBufferPointer(rebasing: raw[8...])
        _ = try? GapCoder.decode(stream, count: count, nonzero: nonzero)
        var out = [UInt8](repeating: 0, count: count * 2)
        out.withUnsafeMutableBytes { _ = try? GapCoder.decode(stream, count: count, nonzero: nonzero, scale: 0.5, into: $0, as: .bf16) }
    }
    return 0
}

/// Opens a container and reads every file and tensor it lists.
func readContainer(_ bytes: [UInt8]) {
    guard let r = try? ContainerReader(name: "fuzz.cpeft", contents: bytes) else { return }
    for f in r.index.files { _ = try? r.contents(of: f) }
    for t in r.index.tensors {
        _ = try? r.payload(t)
        if t.dtype.isFloatingPoint, t.count <= 1 << 20 {
            var out = [UInt8](repeating: 0, count: t.count * 2)
            out.withUnsafeMutableBytes { _ = try? r.decode(t, as: .bf16, into: $0, residualOnly: true) }
        }
    }
}

/// The target `COMPEFT_FUZZ_TARGET` names, if any.
let forcedTarget: UInt8? = getenv("COMPEFT_FUZZ_TARGET").flatMap { UInt8(String(cString: $0)) }.map { $0 % 9 }

@_silgen_name("LLVMFuzzerMutate")
func libFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// libFuzzer's custom mutator: for targets 6, 7 and 8, half the mutations change whole pickle opcodes or
/// HDF5 metadata fields (the selector byte is kept); everything else is libFuzzer's own byte mutation.
@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    if size > 1, seed & 1 == 0 {
        let structured: Int
        switch forcedTarget ?? data[0] % 8 {
        case 6: structured = PickleMutator.mutate(data, size: size, maxSize: maxSize, seed: seed >> 1)
        case 7, 8: structured = HDF5Mutator.mutate(data, size: size, maxSize: maxSize, seed: seed >> 1)
        default: structured = 0
        }
        if structured > 0 { return structured }
    }
    return libFuzzerMutate(data, size, maxSize)
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main`; hand control to libFuzzer's driver.
@_cdecl("FuzzReaders_main")
public func fuzzReadersMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzz(data, size) }
}
