#!/usr/bin/env bash
# Builds the Python package's wheel: one self-contained libcompeft.so (the C ABI with the Swift runtime
# linked in statically) inside a py3-none-<platform> wheel that needs only libc, libstdc++, libzstd and
# libhdf5 from the system — not the Swift toolchain.
#
#   1. swift build -c release --product CompeftCStatic  → .build/release/libCompeftCStatic.a
#   2. link it with -static-stdlib into python/src/compeft/libcompeft.so, exporting only compeft_*
#      (python/libcompeft.map), stripped; refuse the result if it needs a library outside that list
#      and python/hdf5_reader.c into python/src/compeft/compeft-hdf5-reader (libcompeft reads HDF5 in it)
#   3. pip wheel ./python → OUTDIR/compeft-VERSION-py3-none-<platform>.whl
#
# Prints the wheel's path on its last line. `pip install ./python` works too once step 2 has run.
#
# usage: scripts/build-python-wheel.sh [--output-dir DIR]   (default .build/python-wheel)
set -euo pipefail
cd "$(dirname "$0")/.."

outdir=".build/python-wheel"
while [ $# -gt 0 ]; do
  case "$1" in
    --output-dir|-o) outdir="${2:?--output-dir needs a folder}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-python-wheel.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

swift build -c release --product CompeftCStatic >&2
bin="$(swift build -c release --show-bin-path)"
archive="$bin/libCompeftCStatic.a"
[ -f "$archive" ] || { echo "build-python-wheel.sh: $archive was not built" >&2; exit 1; }

swiftc="$(dirname "$(readlink -f "$(command -v swift)")")/swiftc"
library=python/src/compeft/libcompeft.so
tmp="$library.tmp.$$"
helper=python/src/compeft/compeft-hdf5-reader
helper_tmp="$helper.tmp.$$"
objects="$(mktemp -d)"
trap 'rm -f "$tmp" "$helper_tmp"; rm -rf "$objects"' EXIT
# The archive's objects are linked as objects: -static-stdlib hides the symbols of every archive
# (--exclude-libs ALL), which would hide the C ABI too.
duplicates="$(ar t "$archive" | sort | uniq -d)"
[ -z "$duplicates" ] || { echo "build-python-wheel.sh: $archive has members of the same name: $duplicates" >&2; exit 1; }
(cd "$objects" && ar x "$archive")
# Foundation's static archives depend on each other (and on ICU) in a cycle the autolinked order does not
# resolve: link them as one group, and refuse any undefined symbol (it would only show at dlopen).
static="$(dirname "$swiftc")/../lib/swift_static/linux"
foundation=()
for a in Foundation FoundationInternationalization _FoundationICU FoundationEssentials _FoundationCollections \
         _FoundationCShims CoreFoundation; do
  [ -f "$static/lib$a.a" ] && foundation+=("$static/lib$a.a")
done
# shellcheck disable=SC2046  # pkg-config prints several flags
"$swiftc" -emit-library -static-stdlib -o "$tmp" "$objects"/*.o \
  $(pkg-config --libs-only-L hdf5 libzstd | sed 's/-L/-L /g') -lhdf5 -lzstd \
  -Xlinker --start-group "${foundation[@]}" -Xlinker --end-group -Xlinker --no-undefined \
  -Xlinker --gc-sections -Xlinker --version-script="$PWD/python/libcompeft.map" \
  2> >(grep -v "the use of \`mktemp' is dangerous" >&2)
strip --strip-unneeded "$tmp"

# Only the system libraries the package promises; nothing from the toolchain.
needed="$(readelf -d "$tmp" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
for lib in $needed; do
  case "$lib" in
    libc.so.*|libm.so.*|libstdc++.so.*|libgcc_s.so.*|ld-linux*.so.*|libzstd.so.*|libhdf5*.so.*) ;;
    *) echo "build-python-wheel.sh: libcompeft.so needs $lib, which the wheel does not promise" >&2; exit 1 ;;
  esac
done
if readelf -d "$tmp" | grep -Eq "RPATH|RUNPATH"; then
  echo "build-python-wheel.sh: libcompeft.so has an RPATH/RUNPATH; it must find nothing but system libraries" >&2
  exit 1
fi
mv -f "$tmp" "$library"
echo "libcompeft.so: $(stat -c %s "$library") bytes; needs: $(echo $needed)" >&2

# compeft-hdf5-reader, the process in which the library reads HDF5 files (a crash in libhdf5 ends it, not
# the Python process): a few lines of C calling the library beside it ($ORIGIN).
cc -O2 -Wall -Werror -o "$helper_tmp" python/hdf5_reader.c -L python/src/compeft -l:libcompeft.so \
  -Wl,-rpath,'$ORIGIN'
strip "$helper_tmp"
mv -f "$helper_tmp" "$helper"

mkdir -p "$outdir"
rm -f "$outdir"/compeft-*.whl
python3 -m pip wheel --quiet --no-deps --disable-pip-version-check -w "$outdir" ./python >&2
rm -rf python/build python/src/compeft.egg-info
wheel="$(ls "$outdir"/compeft-*.whl)"
echo "$wheel"
