#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of compeft's hostile-input parsers: the safetensors reader, the
# container reader with every payload decoder, the torch .bin reader, the gap coder, and the
# structure-aware targets (a container changed field by field and sealed again, pickles in an archive
# with correct CRCs, HDF5 metadata fields of libhdf5-written files, the same files read through compeft's HDF5
# helper process). Starts from Fuzz/seeds and
# Fuzz/corpus (prefixed inputs; the first byte picks the target, see Fuzz/Sources/FuzzReaders) and works in
# a scratch corpus.
#   bash scripts/fuzz.sh [RUNS] [TARGET]   # default 1000000 executions over targets 0-6; TARGET (0-8)
#                                         # runs that target alone, from its own seeds and corpus
#                                         # (target 8 from target 7's)
# Exits non-zero on a crash, hang (>10 s; 150 s for target 8), or an allocation over 2 GiB; the input is left in Fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
target=${2:-}
swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer --product FuzzReaders >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p Fuzz/crashes "$work/seeds"
if [ -n "$target" ]; then
  seeds="$target"
  if [ "$target" = 8 ]; then
    # Target 8 reads target 7's files through compeft-hdf5-reader, the helper process compeft reads HDF5 in.
    seeds=7
    swift build -c release --product compeft-hdf5-reader >/dev/null
    COMPEFT_HDF5_READER="$(swift build -c release --show-bin-path)/compeft-hdf5-reader"
    export COMPEFT_HDF5_READER
  fi
  cp Fuzz/seeds/"$seeds"-* "$work/seeds/"
  cp Fuzz/corpus/"$seeds"-* "$work/seeds/" 2>/dev/null || true
  export COMPEFT_FUZZ_TARGET="$target"
else
  # Every target but 7 (HDF5 through libhdf5, which crashes on some of its inputs: Fuzz/README.md).
  find Fuzz/seeds Fuzz/corpus -type f ! -name '7-*' -exec cp {} "$work/seeds/" \; 2>/dev/null || true
fi
mkdir -p "$work/corpus"
rc=0
# Target 8 waits for the helper, which may use 60 s of CPU time on a file before it is stopped (and is starved
# on a loaded machine): its timeout is above that, so a timeout means the parent itself hangs.
timeout=10
[ "$target" != 8 ] || timeout=150
Fuzz/.build/release/FuzzReaders "$work/corpus" "$work/seeds" -runs="$runs" -max_len=65536 -timeout="$timeout" \
  -rss_limit_mb=2048 -malloc_limit_mb=2048 -artifact_prefix=Fuzz/crashes/ -print_final_stats=1 \
  >"$work.log" 2>&1 || rc=$?
grep -E "^#[0-9]+ +DONE|stat::|ERROR|SUMMARY|Done [0-9]+ runs|Test unit written|Fatal error|runtime failure|crashed:" "$work.log" || true
# A failed run keeps its whole log beside the crashing input.
if [ "$rc" -ne 0 ]; then cp "$work.log" Fuzz/crashes/last-run.log; echo "log: Fuzz/crashes/last-run.log"; fi
rm -f "$work.log"
exit "$rc"
