#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Reads HDF5 files in a separate process, so that a crash inside libhdf5 is an error, not the end of the
/// program that asked (a command, or a server that linked libcompeft).
///
/// libhdf5 trusts the structure of the files it reads more than a hostile file deserves: version 1.10.8
/// (Debian 12's) reads out of bounds — SIGSEGV — on files whose metadata passes its own checksums
/// (`Fuzz/known-crashes/`). compeft cannot fix the library, so it keeps the library out of its own address
/// space: ``HDF5Reader/read(path:skipUnsupported:)`` starts the helper program `compeft-hdf5-reader`, hands it
/// the already opened file as descriptor 3, and receives the tensors over a socket. The helper runs the same
/// reader in-process (``HDF5Reader/readInProcess(path:skipUnsupported:)``: every check on links, external
/// storage, depth and sizes), and the parent checks everything it receives again before it allocates.
/// When the helper dies, the parent reports it as an error naming the file and the signal:
///
/// - a signal such as SIGSEGV or SIGBUS: libhdf5 crashed on the file (`.malformed`);
/// - SIGPROF: the read used more CPU time than ``cpuSeconds(forFileOf:)`` allows, a file that makes
///   libhdf5 loop (`.malformed`); the allowance is generous for real files (60 s plus 60 s per GiB).
///
/// The helper's data memory is limited too (``memoryBytes(forFileOf:)``: 512 MiB plus three times the
/// largest dataset the file may hold), so a file that makes libhdf5 allocate without end fails in the helper
/// rather than exhausting the machine.
///
/// The helper is found, in this order: the path in `COMPEFT_HDF5_READER` (or `in-process` there, which
/// reads inside this process — for trusted files only); `compeft-hdf5-reader` beside the program or
/// shared library that holds this code, or in `../libexec/compeft/` from there. The helper dies with the
/// process that started it (`PR_SET_PDEATHSIG`) and writes no core file.
package enum HDF5ReaderProcess {
    /// The helper program's file name.
    package static let helperName = "compeft-hdf5-reader"
    /// The environment variable naming the helper (or `in-process`).
    package static let environmentVariable = "COMPEFT_HDF5_READER"
    /// What the helper says first, so that a program of another version or kind is refused.
    static let greeting: [UInt8] = Array("CPH5".utf8) + [1, 0, 0, 0]
    /// The longest name or message the parent accepts from the helper.
    static let maxStringBytes = 1 << 20

    /// How HDF5 files are read.
    package enum Mode: Equatable, Sendable {
        /// In the helper program at this path.
        case helper(String)
        /// In this process (`COMPEFT_HDF5_READER=in-process`).
        case inProcess
    }

    /// CPU time allowed for reading a file of `size` bytes: 60 s, plus 60 s per GiB.
    package static func cpuSeconds(forFileOf size: Int) -> Int {
        60 + Int((Double(max(size, 0)) / Double(1 << 30) * 60).rounded(.up))
    }

    /// The most bytes one dataset of a file of `size` bytes may hold, as ``HDF5Reader`` allows: 1100× what
    /// the file stores (compression), at least 16 MiB (fill values), at most 2⁴⁰.
    package static func largestDataset(forFileOf size: Int) -> Int {
        let expanded = max(size, 0).multipliedReportingOverflow(by: HDF5Reader.maxExpansion)
        return max(HDF5Reader.unbackedAllowance, min(HDF5Reader.maxTensorBytes, expanded.overflow ? .max : expanded.partialValue))
    }

    /// The data memory (`RLIMIT_DATA`: heap and private mappings) the helper may use for a file of `size`
    /// bytes: 512 MiB, plus three times the largest dataset such a file may hold (the dataset, libhdf5's
    /// buffers for decompressing it, slack). A file that makes libhdf5 allocate without end fails there,
    /// instead of taking the machine's memory (a crafted 12 KB file took 24 GB before the system killed it).
    package static func memoryBytes(forFileOf size: Int) -> Int {
        let (tripled, overflow) = largestDataset(forFileOf: size).multipliedReportingOverflow(by: 3)
        return overflow ? .max : (512 << 20) &+ min(tripled, .max - (512 << 20))
    }

    // MARK: - Finding the helper

    /// The mode `COMPEFT_HDF5_READER` asks for, or the helper found beside this code.
    ///
    /// - Throws: ``TaskVectorError`` (`.unsupported`, naming `file`) when no helper is found, saying where
    ///   it was looked for and how to name it.
    package static func mode(for file: String) throws -> Mode {
        try mode(for: file, named: getenv(environmentVariable).map { String(cString: $0) }, candidates: candidates)
    }

    /// The mode for `file` when the environment variable says `named` and the helper may be at `candidates`.
    package static func mode(for file: String, named: String?, candidates searched: [String]) throws -> Mode {
        if let named, !named.isEmpty {
            if named == "in-process" { return .inProcess }
            guard isExecutableFile(named) else {
                throw TaskVectorError(
                    .unsupported, file: file,
                    "\(environmentVariable) names '\(named)', which is not an executable file; it must name compeft's "
                        + "HDF5 reader program (\(helperName)) or say 'in-process'")
            }
            return .helper(named)
        }
        if let found = searched.first(where: isExecutableFile) { return .helper(found) }
        throw TaskVectorError(
            .unsupported, file: file,
            "compeft reads HDF5 in a separate process, so that a crash in libhdf5 cannot end this one, and its "
                + "program \(helperName) is not installed (looked for \(searched.joined(separator: ", "))); install "
                + "it beside compeft, or set \(environmentVariable) to its path, or to 'in-process' to read trusted "
                + "files inside this process")
    }

    /// Where the helper may be (found once: neither the program nor the library moves).
    static let candidates = candidatePaths()

    /// Where the helper may be: beside the program and beside the shared library holding this code, and in
    /// `../libexec/compeft/` from each.
    static func candidatePaths() -> [String] {
        var folders: [String] = []
        if let image = imageHoldingThisCode(), let resolved = realpath(image, nil) {
            folders.append(parent(of: String(cString: resolved)))
            free(resolved)
        }
        if let resolved = realpath("/proc/self/exe", nil) {
            folders.append(parent(of: String(cString: resolved)))
            free(resolved)
        }
        var seen = Set<String>()
        return folders.filter { seen.insert($0).inserted }.flatMap { folder in
            [folder + "/" + helperName, parent(of: folder) + "/libexec/compeft/" + helperName]
        }
    }

    /// A function of this module whose address tells which image (program or shared library) holds it.
    private static let anchor: @convention(c) () -> Void = {}

    /// The file of the program or shared library that holds this code: the mapping of `/proc/self/maps`
    /// that contains ``anchor``.
    private static func imageHoldingThisCode() -> String? {
        let address = UInt(bitPattern: unsafeBitCast(anchor, to: UnsafeRawPointer.self))
        guard let maps = procFile("/proc/self/maps", limit: 64 << 20) else { return nil }
        for line in maps.split(separator: UInt8(ascii: "\n")) {
            // "start-end perms offset dev inode   path"
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, let dash = fields[0].firstIndex(of: UInt8(ascii: "-")),
                let start = UInt(String(decoding: fields[0][..<dash], as: UTF8.self), radix: 16),
                let end = UInt(String(decoding: fields[0][(dash + 1)...], as: UTF8.self), radix: 16),
                start <= address, address < end
            else { continue }
            let path = String(decoding: fields[5], as: UTF8.self).trimmingLeadingSpaces
            return path.hasPrefix("/") ? path : nil
        }
        return nil
    }

    /// A file of /proc (which stat calls empty) read to its end, or nil.
    private static func procFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                out += chunk[0..<n]
            } else if n == 0 {
                return out
            } else if errno != EINTR {
                return nil
            }
        }
        return nil
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    // MARK: - Reading through the helper

    /// Reads the HDF5 file open as `descriptor` (named `path` in every error) in the helper at `helper`.
    static func read(descriptor: Int32, size: Int, path: String, skipUnsupported: Bool, helper: String) throws
        -> HDF5Contents
    {
        let process = try HelperProcess(helper: helper, passing: descriptor, file: path)
        try process.send(
            Request(path: "/proc/self/fd/3", skipUnsupported: skipUnsupported, fileSize: size))
        process.finishRequests()
        let contents = try process.receive(file: path, fileSize: size)
        try process.waitForExit(file: path)
        return contents
    }

    /// What the parent asks of the helper: one file.
    struct Request {
        var path: String
        var skipUnsupported: Bool
        /// The file's size, from which the helper sets its CPU time and memory limits for the read.
        var fileSize: Int

        var encoded: [UInt8] {
            var out = WireWriter()
            out.string(path)
            out.byte(skipUnsupported ? 1 : 0)
            out.u64(UInt64(max(fileSize, 0)))
            return out.bytes
        }
    }
}

/// Reads many files through one helper, started again after it dies: for the fuzzer (target 8), which
/// reads a million files and cannot start a program for each. compeft itself starts one helper per file,
/// so that nothing a hostile file did to the helper's memory can touch the next file.
@_spi(Fuzzing) public final class HDF5ReaderSession {
    private let helper: String
    private var process: HDF5ReaderProcess.HelperProcess?

    /// A session with the helper at `helper`.
    public init(helper: String) { self.helper = helper }

    /// The helper `HDF5ReaderProcess.mode(for:)` finds, or nil (in-process, or none installed).
    public static func findHelper() -> String? {
        if case .helper(let path)? = try? HDF5ReaderProcess.mode(for: "-") { return path }
        return nil
    }

    /// Reads `path` as ``HDF5Reader/read(path:skipUnsupported:)`` does, in this session's helper.
    public func read(path: String, skipUnsupported: Bool) throws -> HDF5Contents {
        let opened = try RegularFile.openForReading(path)
        close(opened.descriptor)
        let process = try self.process ?? HDF5ReaderProcess.HelperProcess(helper: helper, passing: nil, file: path)
        self.process = process
        do {
            try process.send(
                HDF5ReaderProcess.Request(path: path, skipUnsupported: skipUnsupported, fileSize: opened.size))
            return try process.receive(file: path, fileSize: opened.size)
        } catch {
            // The helper died, or sent what it should not: start another for the next file.
            if process.broken { self.process = nil }
            throw error
        }
    }
}

// MARK: - The helper process, seen from the parent

extension HDF5ReaderProcess {
    /// A running helper: its process and the socket to it. Killed and reaped when dropped unfinished.
    final class HelperProcess {
        private(set) var pid: pid_t
        private var socket: Int32
        private var reader: WireReader
        /// Whether the helper died or sent something it should not: it answers nothing more.
        private(set) var broken = false

        /// Starts `helper` with a socket as its standard input and output, `/dev/null` as its standard error,
        /// `descriptor` (when given) as its descriptor 3, default signal handling and no blocked signal.
        init(helper: String, passing descriptor: Int32?, file: String) throws {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw TaskVectorError(.io, file: file, "cannot start the HDF5 reader: socketpair: \(errnoText())")
            }
            // Numbers above the three standard ones and 3, so that no dup2 below is a no-op that would keep
            // close-on-exec set.
            func high(_ fd: Int32) -> Int32 {
                let moved = fcntl(fd, F_DUPFD_CLOEXEC, 10)
                close(fd)
                return moved
            }
            let ours = high(pair[0])
            let theirs = high(pair[1])
            let passed = descriptor.map { fcntl($0, F_DUPFD_CLOEXEC, 10) } ?? -2
            defer {
                close(theirs)
                if passed >= 0 { close(passed) }
            }
            guard ours >= 0, theirs >= 0, passed != -1 else {
                if ours >= 0 { close(ours) }
                throw TaskVectorError(.io, file: file, "cannot start the HDF5 reader: \(errnoText())")
            }

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, theirs, 0)
            posix_spawn_file_actions_adddup2(&actions, theirs, 1)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            if passed >= 0 { posix_spawn_file_actions_adddup2(&actions, passed, 3) }

            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var none = sigset_t()
            sigemptyset(&none)
            var all = sigset_t()
            sigfillset(&all)
            posix_spawnattr_setsigmask(&attributes, &none)
            posix_spawnattr_setsigdefault(&attributes, &all)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

            var child: pid_t = 0
            let arguments = [helper, "--serve"]
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { for a in argv { free(a) } }
            // The environment as it is, but without Swift's crash backtracer: a crash is expected here, and
            // reported by the parent.
            var environment: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no")]
            var entry = environ
            while let variable = entry.pointee {
                if strncmp(variable, "SWIFT_BACKTRACE=", 16) != 0 { environment.append(strdup(variable)) }
                entry += 1
            }
            environment.append(nil)
            defer { for e in environment { free(e) } }
            var status = posix_spawn(&child, helper, &actions, &attributes, &argv, &environment)
            // ETXTBSY: another thread of this process wrote an executable and started a program before closing
            // it, so the file was briefly open for writing in that program; it passes.
            var retries = 0
            while status == ETXTBSY && retries < 20 {
                usleep(10_000)
                retries += 1
                status = posix_spawn(&child, helper, &actions, &attributes, &argv, &environment)
            }
            guard status == 0 else {
                close(ours)
                throw TaskVectorError(
                    .io, file: file, "cannot start the HDF5 reader '\(helper)': \(String(cString: strerror(status)))")
            }
            pid = child
            socket = ours
            reader = WireReader(descriptor: ours)
            do {
                let hello = try reader.bytes(HDF5ReaderProcess.greeting.count)
                guard hello == HDF5ReaderProcess.greeting else {
                    throw TaskVectorError(
                        .io, file: file,
                        "'\(helper)' is not compeft's HDF5 reader of this version (it greeted with other bytes)")
                }
            } catch let error as WireReader.Failure {
                throw failure(error, file: file)
            }
        }

        deinit {
            if socket >= 0 { close(socket) }
            if pid > 0 {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            }
        }

        /// Sends one request (without SIGPIPE: a helper that died is noticed when its answer is read).
        func send(_ request: Request) throws {
            let bytes = request.encoded
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes {
                    Glibc.send(socket, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
                }
                if n > 0 {
                    done += n
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }

        /// Tells the helper that no more requests come: it exits after answering.
        func finishRequests() { shutdown(socket, Int32(SHUT_WR)) }

        /// Reads the answer to one request: the tensors, or the error the helper reported, or an error
        /// saying how the helper died.
        func receive(file: String, fileSize: Int) throws -> HDF5Contents {
            do {
                return try reader.response(file: file, fileSize: fileSize)
            } catch let error as WireReader.Failure {
                broken = true
                throw failure(error, file: file)
            }
        }

        /// Waits for the helper to exit after its last answer; an abnormal exit is an error.
        func waitForExit(file: String) throws {
            close(socket)
            socket = -1
            let status = reap()
            guard status == 0 else { throw death(status, file: file) }
        }

        private func reap() -> Int32 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else { status = 0; break }
            }
            pid = 0
            return status
        }

        /// A failure on the socket: when the helper is gone, what killed it; otherwise what was wrong with
        /// what it sent.
        private func failure(_ error: WireReader.Failure, file: String) -> TaskVectorError {
            switch error {
            case .endOfStream:
                close(socket)
                socket = -1
                return death(reap(), file: file, endedEarly: true)
            case .readFailed(let code):
                return TaskVectorError(
                    .io, file: file, "reading from compeft's HDF5 reader process failed: \(String(cString: strerror(code)))")
            case .implausible(let what):
                return TaskVectorError(.malformed, file: file, "compeft's HDF5 reader process sent \(what)")
            }
        }

        private func death(_ status: Int32, file: String, endedEarly: Bool = false) -> TaskVectorError {
            let signal = status & 0x7f
            if signal != 0 && signal != 0x7f {
                if signal == SIGPROF {
                    return TaskVectorError(
                        .malformed, file: file,
                        "reading this HDF5 file used more CPU time than compeft allows for its size (60 s + 60 s per "
                            + "GiB): libhdf5 loops on it; it is malformed or crafted")
                }
                if signal == SIGKILL {
                    return TaskVectorError(
                        .malformed, file: file,
                        "compeft's HDF5 reader process was killed (signal 9) reading this file, most likely by the "
                            + "system for using too much memory: the file is malformed or crafted")
                }
                let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
                return TaskVectorError(
                    .malformed, file: file,
                    "libhdf5 crashed reading this file (signal \(signal), \(name)): it is malformed or crafted. compeft "
                        + "reads HDF5 in a separate process (\(HDF5ReaderProcess.helperName)), so nothing else was affected")
            }
            let code = (status >> 8) & 0xff
            if endedEarly || code != 0 {
                // The helper's only input is the file: libhdf5 ended it (fuzzing found files on which it exits).
                return TaskVectorError(
                    .malformed, file: file,
                    "compeft's HDF5 reader process ended without an answer (exit status \(code)) reading this file: "
                        + "it is malformed or crafted")
            }
            return TaskVectorError(.io, file: file, "compeft's HDF5 reader process failed")
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

#if os(Linux)
/// `prctl(2)`, which Glibc's module map leaves out (<sys/prctl.h>); called with integer arguments only.
@_silgen_name("prctl")
private func setParentDeathSignal(_ option: Int32, _ a: UInt, _ b: UInt, _ c: UInt, _ d: UInt) -> Int32
private let PR_SET_PDEATHSIG: Int32 = 1
#endif

extension String {
    fileprivate var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}

// MARK: - The wire between the two

/// Little-endian fields on the socket. A response is a sequence of records, each led by one byte:
/// `T` a tensor (name, dtype, rank, dimensions, byte count, bytes), `S` a dataset skipped (an error record),
/// then `D` (done) or `E` (an error: code, tensor or none, message), which ends it.
struct WireWriter {
    var bytes: [UInt8] = []
    mutating func byte(_ b: UInt8) { bytes.append(b) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u32(UInt32(utf8.count))
        bytes += utf8
    }
    mutating func optionalString(_ s: String?) {
        if let s { string(s) } else { u32(.max) }
    }
    mutating func error(_ error: TaskVectorError) {
        string(error.code.rawValue)
        optionalString(error.tensor)
        string(error.message)
    }
}

/// Reads records from the helper, checking every count before it allocates.
struct WireReader {
    enum Failure: Error {
        case endOfStream
        case readFailed(Int32)
        case implausible(String)
    }

    let descriptor: Int32

    /// Fills `buffer` completely, or fails.
    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(Failure) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let n = recv(descriptor, base + done, buffer.count - done, Int32(MSG_WAITALL))
            if n > 0 {
                done += n
            } else if n == 0 || errno == ECONNRESET {
                // ECONNRESET: the helper closed the socket with a request still unread, by dying.
                throw .endOfStream
            } else if errno != EINTR {
                throw .readFailed(errno)
            }
        }
    }

    func bytes(_ count: Int) throws(Failure) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 8)
        defer { buffer.deallocate() }
        try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
        return Array(buffer[0..<count])
    }

    func byte() throws(Failure) -> UInt8 { try bytes(1)[0] }

    func u32() throws(Failure) -> UInt32 {
        try bytes(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    func u64() throws(Failure) -> UInt64 {
        try bytes(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    func string(_ what: String) throws(Failure) -> String {
        guard let s = try optionalString(what) else { throw .implausible("no \(what)") }
        return s
    }

    func optionalString(_ what: String) throws(Failure) -> String? {
        let count = try u32()
        if count == .max { return nil }
        guard count <= HDF5ReaderProcess.maxStringBytes else {
            throw .implausible("a \(what) of \(count) bytes (at most \(HDF5ReaderProcess.maxStringBytes) are accepted)")
        }
        let raw = try bytes(Int(count))
        guard let text = String(validating: raw, as: UTF8.self) else { throw .implausible("a \(what) that is not UTF-8") }
        return text
    }

    func error(file: String) throws(Failure) -> TaskVectorError {
        let codeName = try string("error code")
        guard let code = TaskVectorError.Code(rawValue: codeName) else { throw .implausible("an unknown error code") }
        let tensor = try optionalString("tensor name")
        let message = try string("error message")
        return TaskVectorError(code, file: file, tensor: tensor, message)
    }

    /// One response: tensors and skipped datasets up to `D`, or the error `E` carries (thrown).
    ///
    /// A tensor may hold at most what ``HDF5Reader`` allows a dataset of a file of `fileSize` bytes (its
    /// expansion limit, or 16 MiB of fill values), so a confused helper cannot make this process allocate more.
    func response(file: String, fileSize: Int) throws -> HDF5Contents {
        let largest = HDF5ReaderProcess.largestDataset(forFileOf: fileSize)
        var contents = HDF5Contents(tensors: [], skipped: [])
        while true {
            let tag = try byte()
            switch tag {
            case UInt8(ascii: "T"):
                guard contents.tensors.count < HDF5Reader.maxObjects else {
                    throw Failure.implausible("more than \(HDF5Reader.maxObjects) tensors")
                }
                contents.tensors.append(try tensor(largest: largest))
            case UInt8(ascii: "S"):
                guard contents.skipped.count < HDF5Reader.maxObjects else {
                    throw Failure.implausible("more than \(HDF5Reader.maxObjects) skipped datasets")
                }
                contents.skipped.append(try error(file: file))
            case UInt8(ascii: "E"):
                throw try error(file: file)
            case UInt8(ascii: "D"):
                return contents
            default:
                throw Failure.implausible("a record of unknown kind \(tag)")
            }
        }
    }

    private func tensor(largest: Int) throws(Failure) -> LoadedTensor {
        let name = try string("tensor name")
        guard let dtype = DType(rawValue: try string("dtype")) else { throw .implausible("an unknown dtype for '\(name)'") }
        let rank = Int(try byte())
        guard rank <= HDF5Reader.maxRank else { throw .implausible("rank \(rank) for '\(name)'") }
        var shape: [Int] = []
        for _ in 0..<rank {
            let d = try u64()
            guard let dim = Int(exactly: d) else { throw .implausible("dimension \(d) for '\(name)'") }
            shape.append(dim)
        }
        let declared = try u64()
        guard let count = checkedElementCount(shape),
            case (let expected, false) = count.multipliedReportingOverflow(by: dtype.byteSize),
            UInt64(expected) == declared
        else {
            throw .implausible("\(declared) bytes for '\(name)' of shape \(shape) and dtype \(dtype.rawValue)")
        }
        guard expected <= largest else {
            throw .implausible("\(expected) bytes for '\(name)', more than a dataset of this file may hold (\(largest))")
        }
        guard let owned = OwnedBytes(uninitializedByteCount: expected) else {
            throw .implausible("\(expected) bytes for '\(name)', more memory than the system gives")
        }
        let target = UnsafeMutableRawBufferPointer(rebasing: owned.buffer[0..<expected])
        try fill(target)
        let data = TensorData(dtype: dtype, bytes: UnsafeRawBufferPointer(target), owner: owned)
        return LoadedTensor(name: name, dtype: dtype, shape: shape, data: data)
    }
}

// MARK: - The helper's side

extension HDF5ReaderProcess {
    /// The helper program: answers requests read from standard input on standard output, until standard
    /// input ends; returns the exit status. `compeft-hdf5-reader` (and the C ABI's
    /// `compeft_hdf5_reader_main`, which the Python package's copy of the helper calls) run only this.
    package static func helperMain() -> Int32 {
        #if os(Linux)
        // Dies with the process that started it, even by SIGKILL.
        _ = setParentDeathSignal(PR_SET_PDEATHSIG, UInt(SIGKILL), 0, 0, 0)
        #endif
        if getppid() == 1 { return 1 }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        signal(SIGPIPE, SIG_DFL)
        guard writeAll(greeting) else { return 1 }
        let input = WireReader(descriptor: 0)
        while true {
            let request: Request
            do {
                let path = try input.string("path")
                let flags = try input.byte()
                let size = try input.u64()
                request = Request(path: path, skipUnsupported: flags & 1 != 0, fileSize: Int(clamping: size))
            } catch {
                return 0  // no more requests
            }
            // This read's limits: CPU time (SIGPROF ends the helper) and data memory (allocations fail).
            var memory = rlimit()
            getrlimit(Int32(RLIMIT_DATA.rawValue), &memory)
            memory.rlim_cur = min(rlim_t(memoryBytes(forFileOf: request.fileSize)), memory.rlim_max)
            setrlimit(Int32(RLIMIT_DATA.rawValue), &memory)
            var timer = itimerval(
                it_interval: timeval(tv_sec: 0, tv_usec: 0),
                it_value: timeval(tv_sec: cpuSeconds(forFileOf: request.fileSize), tv_usec: 0))
            setitimer(Int32(ITIMER_PROF.rawValue), &timer, nil)
            let answered = answer(request)
            timer.it_value = timeval(tv_sec: 0, tv_usec: 0)
            setitimer(Int32(ITIMER_PROF.rawValue), &timer, nil)
            guard answered else { return 1 }
        }
    }

    /// Reads the requested file and writes the response, each tensor as soon as it is read; false when the
    /// parent is gone.
    private static func answer(_ request: Request) -> Bool {
        struct ParentGone: Error {}
        let skipped: [TaskVectorError]
        do {
            skipped = try HDF5Reader.readInProcess(path: request.path, skipUnsupported: request.skipUnsupported) { tensor in
                var out = WireWriter()
                out.byte(UInt8(ascii: "T"))
                out.string(tensor.name)
                out.string(tensor.dtype.rawValue)
                out.byte(UInt8(tensor.shape.count))
                for d in tensor.shape { out.u64(UInt64(d)) }
                out.u64(UInt64(tensor.data.bytes.count))
                guard writeAll(out.bytes), writeAll(tensor.data.bytes) else { throw ParentGone() }
            }
        } catch is ParentGone {
            return false
        } catch {
            var out = WireWriter()
            out.byte(UInt8(ascii: "E"))
            out.error(error as? TaskVectorError ?? TaskVectorError(.io, "\(error)"))
            return writeAll(out.bytes)
        }
        for error in skipped {
            var out = WireWriter()
            out.byte(UInt8(ascii: "S"))
            out.error(error)
            guard writeAll(out.bytes) else { return false }
        }
        return writeAll([UInt8(ascii: "D")])
    }

    private static func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { writeAll($0) }
    }

    private static func writeAll(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var done = 0
        while done < bytes.count {
            let n = write(1, base + done, bytes.count - done)
            if n > 0 {
                done += n
            } else if n < 0, errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}

extension HDF5Reader {
    /// The whole of the `compeft-hdf5-reader` program, which compeft starts to read HDF5 files out of its
    /// own process (``HDF5ReaderProcess``); returns its exit status. Not for other use.
    public static func helperMain() -> Int32 { HDF5ReaderProcess.helperMain() }
}
