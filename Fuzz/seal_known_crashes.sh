#!/usr/bin/env bash
# Makes Fixtures/files/formats/crash_*.h5 from Fuzz/known-crashes/7-libhdf5-*: target 7 seals an input's HDF5
# checksums and writes the file to its scratch path before libhdf5 reads it in-process and crashes; the file
# left there is the fixture. Needs the fuzzer build (scripts/fuzz.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer --product FuzzReaders >/dev/null
folder=$([ -w /dev/shm ] && echo /dev/shm || echo /tmp)
for input in Fuzz/known-crashes/7-libhdf5-*; do
  name="crash_$(basename "$input" | sed 's/^7-libhdf5-//; s/-/_/g').h5"
  rm -f "$folder"/compeft-fuzz-*.h5
  if COMPEFT_FUZZ_TARGET=7 Fuzz/.build/release/FuzzReaders "$input" >/dev/null 2>&1; then
    echo "seal_known_crashes.sh: $input no longer crashes libhdf5" >&2
    exit 1
  fi
  mv "$folder"/compeft-fuzz-*.h5 "Fixtures/files/formats/$name"
  chmod 644 "Fixtures/files/formats/$name"
  echo "Fixtures/files/formats/$name"
done
