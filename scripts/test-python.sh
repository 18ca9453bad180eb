#!/usr/bin/env bash
# The Python package's tests, against the wheel as a user installs it:
#   1. scripts/build-python-wheel.sh builds the wheel (libcompeft.so with the Swift runtime linked in);
#   2. a fresh virtual environment with nothing but the wheel and its dependency (numpy) imports it, decodes
#      a container with numpy and without torch, with the Swift toolchain hidden from the dynamic linker;
#   3. a fresh virtual environment that sees the system's packages (torch, peft, transformers, safetensors,
#      pytest: scripts/bootstrap.sh installs them) gets the wheel and runs python/tests with pytest, which
#      also compares the package's reports with the command line's --json (the debug `compeft` binary).
# A skipped torch/peft or command-line test fails the run here (COMPEFT_REQUIRE_TORCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

wheel="$(bash scripts/build-python-wheel.sh | tail -1)"
# The command line, whose --json reports the package's must equal (python/tests/test_report_parity.py).
swift build --product compeft >&2
cli="$(swift build --show-bin-path)/compeft"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== $wheel in a bare virtual environment (numpy only)"
python3 -m venv "$work/bare"
"$work/bare/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
(cd "$work" && env -u COMPEFT_LIBRARY LD_LIBRARY_PATH= PATH=/usr/bin:/bin "$work/bare/bin/python" - "$repo" <<'PY'
import importlib.util, sys
import numpy as np
import compeft
repo = sys.argv[1]
assert importlib.util.find_spec("torch") is None, "the bare environment must not have torch"
assert compeft.__file__.startswith(sys.prefix), compeft.__file__
report = compeft.compress(f"{repo}/Fixtures/files/lora-bert-seqcls", "bare.cpeft", density=10)
with compeft.open("bare.cpeft") as c:
    values = c.decode("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight")
    assert values.shape == (8, 64) and values.dtype == np.float32 and np.count_nonzero(values) == c.tensors[
        "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"].nonzero
assert compeft.verify("bare.cpeft")["ok"]
# HDF5 is read in the wheel's compeft-hdf5-reader process, which must run without the toolchain too.
h5 = compeft.compress(f"{repo}/Fixtures/files/formats/keras.weights.h5", "keras.cpeft", density=20)
assert h5["input_kind"] and h5["output_bytes"] > 0, h5
print(f"ok: compeft {compeft.__version__} from {compeft.__file__}: {report['output_bytes']} bytes, decoded without torch;"
      f" an HDF5 file read through the helper process ({h5['output_bytes']} bytes)")
PY
)

echo "== python/tests in a fresh virtual environment"
python3 -m venv --system-site-packages "$work/venv"
# --ignore-installed: the venv sees the system's packages, and a compeft installed there (scripts/demo.sh
# installs one) would otherwise satisfy the requirement and the tests would run against it, not this wheel.
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --ignore-installed "$wheel"
cd "$work"
env -u COMPEFT_LIBRARY COMPEFT_TEST_INSTALLED=1 COMPEFT_REQUIRE_TORCH=1 COMPEFT_CLI="$cli" HF_HUB_OFFLINE=1 \
  "$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$repo/python" "$repo/python/tests"
