/*
 * compeft-hdf5-reader, as the Python package ships it beside libcompeft.so: libcompeft reads HDF5 files in
 * this separate process, so that a crash inside libhdf5 on a hostile file ends this program and becomes a
 * CompeftError in Python, instead of ending the Python process. All the work is the library's
 * (compeft_hdf5_reader_main); libcompeft starts this program itself, it is not meant to be run by hand.
 */
#include <stdio.h>
#include <string.h>

int compeft_hdf5_reader_main(void);

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--serve") != 0) {
        fputs("compeft-hdf5-reader: compeft starts this program to read HDF5 files; it takes no commands\n", stderr);
        return 2;
    }
    return compeft_hdf5_reader_main();
}
