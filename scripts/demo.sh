#!/usr/bin/env bash
# The main job on the shipped fixtures: compress a real PEFT LoRA adapter, inspect it, restore it; then build
# the Python package and install it into the active python3 (a virtual environment, when one is activated).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
swift build -c release --product compeft >/dev/null
swift build -c release --product compeft-hdf5-reader >/dev/null  # HDF5 is read in this helper process
compeft=.build/release/compeft
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for adapter in lora-bert-seqcls ia3-bert-seqcls; do
  echo "== $adapter"
  "$compeft" compress "Fixtures/files/$adapter" -o "$out/$adapter.cpeft" --density 10 --force
  "$compeft" verify "$out/$adapter.cpeft"
  "$compeft" decompress "$out/$adapter.cpeft" -o "$out/$adapter-restored" --force
  cmp -s "Fixtures/files/$adapter/adapter_config.json" "$out/$adapter-restored/adapter_config.json" \
    && echo "adapter_config.json restored byte-for-byte"
  echo
done
"$compeft" inspect "$out/lora-bert-seqcls.cpeft"

echo
echo "== Python package"
wheel="$(bash scripts/build-python-wheel.sh | tail -1)"
python3 -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel" 2>&1 \
  | grep -v "WARNING: Running pip as" >&2 || true
python3 -c "import compeft, sys; print(f'installed compeft {compeft.__version__} for {sys.executable}')"

# The command and its manual page (swift-argument-parser's generate-manual plugin) on PATH and MANPATH:
# /usr/local when it is writable (root), else ~/.local; PREFIX=… chooses another.
echo
echo "== Command and manual"
swift package generate-manual --configuration release >/dev/null
prefix="${PREFIX:-/usr/local}"
[ -n "${PREFIX:-}" ] || [ -w "$prefix" ] || prefix="$HOME/.local"
install -D -m 755 "$compeft" "$prefix/bin/compeft"
# compeft reads HDF5 in this helper process (a libhdf5 crash ends the helper, not compeft); it looks for it in
# ../libexec/compeft/ from its own folder.
install -D -m 755 .build/release/compeft-hdf5-reader "$prefix/libexec/compeft/compeft-hdf5-reader"
install -D -m 644 .build/plugins/GenerateManual/outputs/compeft/compeft.1 "$prefix/share/man/man1/compeft.1"
echo "installed $prefix/bin/compeft (with $prefix/libexec/compeft/compeft-hdf5-reader) and its manual $prefix/share/man/man1/compeft.1 (man compeft)"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "add $prefix/bin to PATH: export PATH=\"$prefix/bin:\$PATH\"" ;; esac
