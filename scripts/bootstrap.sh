#!/usr/bin/env bash
# Installs what compeft needs on Debian, idempotently and without prompts:
# the C libraries (.ci/apt-packages) and the Python packages the cross-check tests use.
# With CI=true (as .ci/run sets it) it also installs torch, transformers and peft, so CI runs the tests
# that load compeft's outputs in PEFT; without them those tests are skipped with their reason.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
  [ -z "$pkg" ] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < .ci/apt-packages
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python: the cross-checks of the Swift tests (NumPy, the safetensors package, h5py, jsonschema for the JSON
# reports' schemas in docs/schemas) and the Python package's
# tests (pytest; torch, transformers and peft for its PEFT tests, at the versions Fixtures/README.md names).
# torch's CPU build comes from the machine's local wheel folder (pip's find-links), never PyPI's CUDA build.
# Installed into whatever python3 is active: a virtual environment, when one is activated.
if command -v python3 >/dev/null; then
  pip_install() {
    echo "bootstrap: pip install $*" >&2
    python3 -m pip install --quiet --disable-pip-version-check "$@" 2>&1 | grep -v "WARNING: Running pip as" >&2 || true
  }
  python3 -c "import numpy, safetensors, h5py, pytest" 2>/dev/null || pip_install numpy safetensors h5py pytest
  python3 -c "import jsonschema" 2>/dev/null || pip_install jsonschema==4.26.0
  python3 -c "import torch" 2>/dev/null || pip_install "torch==2.13.0+cpu"
  python3 -c "import transformers, peft" 2>/dev/null || pip_install "torch==2.13.0+cpu" transformers==5.24.0 peft==0.21.2
fi

# CI (CI=true) must have torch, transformers and peft for the PEFT-load tests: where the pinned CPU wheel above
# was not on offer, torch comes from a local CPU wheel of another version (find-links), else from the registry;
# if they still do not import, the setup stops here rather than letting those tests fail one by one.
if [ "${CI:-}" = "true" ] && command -v python3 >/dev/null; then
  if ! python3 -c "import torch, transformers, peft" 2>/dev/null; then
    wheel=""
    for dir in $(python3 -m pip config get global.find-links 2>/dev/null || true) ${PIP_FIND_LINKS:-}; do
      for w in "$dir"/torch-*+cpu-*.whl; do [ -e "$w" ] && wheel="$w"; done
    done
    echo "bootstrap: pip install ${wheel:-torch} transformers peft (CI runs the PEFT-load tests)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${wheel:-torch}" transformers peft 2>&1 \
      | grep -v "WARNING: Running pip as" >&2 || true
    python3 -c "import torch, transformers, peft" || { echo "bootstrap: torch, transformers or peft did not install" >&2; exit 1; }
  fi
fi
