"""HDF5 inputs are read by libhdf5 in the package's compeft-hdf5-reader process, so a file that crashes
libhdf5 raises here instead of ending the Python process."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

import compeft
from compeft import _native

from conftest import REPO

FORMATS = REPO / "Fixtures" / "files" / "formats"
CRASHING = ["crash_continuation_length_2.h5", "crash_btree2_header_address.h5"]


def test_an_hdf5_file_compresses_through_the_helper(tmp_path):
    out = tmp_path / "k.cpeft"
    report = compeft.compress(FORMATS / "keras.weights.h5", out, density=20)
    assert report["output_bytes"] == out.stat().st_size
    assert [t["name"] for t in report["tensors"]] == [t["name"] for t in compeft.inspect(out)["tensors"]]


@pytest.mark.parametrize("name", CRASHING)
def test_a_file_that_crashes_libhdf5_raises_and_this_process_goes_on(tmp_path, name):
    path = FORMATS / name
    with pytest.raises(compeft.CompeftError) as caught:
        compeft.compress(path, tmp_path / "x.cpeft")
    assert "libhdf5 crashed reading this file (signal 11" in str(caught.value)
    assert str(path) in str(caught.value)
    assert not (tmp_path / "x.cpeft").exists()
    # Still alive, and still reading HDF5.
    assert compeft.compress(FORMATS / "keras.weights.h5", tmp_path / "k.cpeft", density=20)["output_bytes"] > 0


@pytest.mark.skipif(os.environ.get("COMPEFT_TEST_INSTALLED") != "1", reason="only for the installed wheel (scripts/test.sh)")
def test_the_wheel_carries_the_helper_beside_the_library():
    package = Path(_native.library_path()).resolve().parent
    helper = package / "compeft-hdf5-reader"
    assert helper.is_file() and os.access(helper, os.X_OK), helper
    ldd = subprocess.run(["ldd", str(helper)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in ldd, ldd
    libcompeft = [line for line in ldd.splitlines() if line.strip().startswith("libcompeft.so")]
    assert libcompeft and str(package / "libcompeft.so") in libcompeft[0], ldd
    assert not re.search(r"swift", ldd, re.IGNORECASE), ldd
    # By hand it explains itself and refuses.
    run = subprocess.run([str(helper)], capture_output=True, text=True)
    assert run.returncode == 2 and "compeft starts this program" in run.stderr
