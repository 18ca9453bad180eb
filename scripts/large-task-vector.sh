#!/usr/bin/env bash
# Compresses a synthetic full fine-tune larger than memory (see scripts/make_large_task_vector.py) and
# reports time and peak RSS with /usr/bin/time -v. Needs ~33 GB of disk in DIR (default /work/large).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/work/large}
shift || true
if [ ! -f "$dir/finetuned/model.safetensors.index.json" ]; then
  python3 scripts/make_large_task_vector.py "$dir" "$@"
fi
swift build -c release --product compeft >/dev/null
du -sh "$dir/base" "$dir/finetuned"
free -g | head -2
/usr/bin/time -v .build/release/compeft compress "$dir/finetuned" --base "$dir/base" -o "$dir/ft.cpeft" \
  --density 10 --force 2> "$dir/time.txt"
grep -E "Elapsed|Maximum resident|Exit status" "$dir/time.txt"
.build/release/compeft verify "$dir/ft.cpeft"
ls -l "$dir/ft.cpeft"
