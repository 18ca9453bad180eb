public import CCompeft
import TaskVector

// The entry point of the Python package's compeft-hdf5-reader (a small C program, python/hdf5_reader.c,
// linked against this library): HDF5 files are read in that process, never in the caller's.

@c @implementation
public func compeft_hdf5_reader_main() -> Int32 {
    HDF5Reader.helperMain()
}
