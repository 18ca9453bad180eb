#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of compeft's hostile-input parsers: the safetensors reader, the
# container reader with every payload decoder, and the torch .bin reader. Starts from Fuzz/seeds
# (prefixed fixtures; the first byte picks the parser) and works in a scratch corpus.
#   bash scripts/fuzz.sh [RUNS]     # default 1000000 executions
# Exits non-zero on a crash, hang (>10 s), or an allocation over 2 GiB; the input is left in Fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer --product FuzzReaders >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p Fuzz/crashes
rc=0
Fuzz/.build/release/FuzzReaders "$work" Fuzz/seeds -runs="$runs" -max_len=65536 -timeout=10 \
  -rss_limit_mb=2048 -malloc_limit_mb=2048 -artifact_prefix=Fuzz/crashes/ -print_final_stats=1 \
  >"$work.log" 2>&1 || rc=$?
grep -E "^#[0-9]+ +DONE|stat::|ERROR|SUMMARY|Done [0-9]+ runs|Test unit written" "$work.log" || true
rm -f "$work.log"
exit "$rc"
