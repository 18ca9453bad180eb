#!/usr/bin/env bash
# Installs what compeft needs on Debian, idempotently and without prompts:
# the C libraries (.ci/apt-packages) and the Python packages the cross-check tests use.
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

# Python is used by tests only (cross-checks against NumPy, the safetensors package and h5py), never by compeft.
if command -v python3 >/dev/null; then
  if ! python3 -c "import numpy, safetensors, h5py" 2>/dev/null; then
    echo "bootstrap: pip install numpy safetensors h5py" >&2
    python3 -m pip install --quiet --disable-pip-version-check numpy safetensors h5py 2>&1 | grep -v "WARNING: Running pip as" >&2 || true
  fi
fi
