#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, then builds and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
swift build --build-tests
swift test --skip-build
# The Python package (python/): its wheel, installed in fresh virtual environments, and its pytest suite.
bash scripts/test-python.sh
# A short coverage-guided fuzz smoke over the readers (the full run is `bash scripts/fuzz.sh`, 10⁶ executions).
bash scripts/fuzz.sh 20000
# And HDF5 files read as compeft reads them, in the helper process (target 8: libhdf5 crashes there, never here).
bash scripts/fuzz.sh 5000 8
