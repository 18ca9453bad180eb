#!/usr/bin/env bash
# Builds the C ABI library in release and installs it as libcompeft.so.
#
# SwiftPM names a dynamic library lib<Product>.so and the product name "compeft" belongs to the command-line
# tool (SwiftPM ignores a second product of the same name), so the package's product is CompeftC and the
# build gives libCompeftC.so. This script copies it to libcompeft.so beside it (or to --output), so that
#
#     cc -I include app.c -L .build/release -lcompeft -Wl,-rpath,"$PWD/.build/release"
#
# works. The copy is a real file, not a link: it can be moved elsewhere on its own.
#
# usage: scripts/build-libcompeft.sh [--output PATH] [--scratch-path DIR] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."

output=""
scratch=".build"
configuration="release"
while [ $# -gt 0 ]; do
  case "$1" in
    --output|-o) output="${2:?--output needs a path}"; shift 2 ;;
    --scratch-path) scratch="${2:?--scratch-path needs a folder}"; shift 2 ;;
    --debug) configuration="debug"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-libcompeft.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

swift build -c "$configuration" --scratch-path "$scratch" --product CompeftC
bin="$(swift build -c "$configuration" --scratch-path "$scratch" --show-bin-path)"
built="$bin/libCompeftC.so"
[ -f "$built" ] || { echo "build-libcompeft.sh: $built was not built" >&2; exit 1; }
[ -n "$output" ] || output="$bin/libcompeft.so"
mkdir -p "$(dirname "$output")"
cp -f "$built" "$output.tmp.$$"
mv -f "$output.tmp.$$" "$output"
echo "$output"
