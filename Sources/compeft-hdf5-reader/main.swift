// compeft-hdf5-reader: the process in which compeft reads HDF5 files, so that a crash inside libhdf5 on a
// hostile file ends this helper, not the command or server that asked (see HDF5ReaderProcess in
// Sources/TaskVector). It is started by compeft with a socket as its standard input and output; it is not
// meant to be run by hand.
#if canImport(Glibc)
import Glibc
#endif
import TaskVector

guard CommandLine.arguments.dropFirst().first == "--serve" else {
    let message = Array("compeft-hdf5-reader: compeft starts this program to read HDF5 files; it takes no commands\n".utf8)
    _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}
exit(HDF5Reader.helperMain())
