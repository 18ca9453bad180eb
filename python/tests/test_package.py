"""The installed package: version, lazy imports, and a native library that needs nothing from the Swift
toolchain."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import compeft
from compeft import _native

from conftest import REPO


def test_version_is_the_library_version_and_the_swift_version():
    swift = (REPO / "Sources/AdapterFormat/Pipeline/Version.swift").read_text()
    assert re.search(r'string = "([^"]+)"', swift).group(1) == compeft.__version__
    assert compeft.library_version() == compeft.__version__
    assert _native.lib().compeft_abi_version() >= _native.ABI_VERSION


def test_import_needs_neither_torch_nor_peft():
    code = "import sys, compeft; print(sorted(m for m in ('torch', 'peft', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_has_a_docstring_and_the_package_is_typed():
    for name in compeft.__all__:
        if name == "__version__":
            continue
        assert getattr(compeft, name).__doc__, name
    assert (Path(compeft.__file__).parent / "py.typed").exists()


@pytest.mark.skipif(os.environ.get("COMPEFT_TEST_INSTALLED") != "1", reason="only for the installed wheel (scripts/test.sh)")
def test_installed_package_is_the_wheel_not_the_source_tree():
    package = Path(compeft.__file__).resolve().parent
    assert REPO / "python" / "src" not in package.parents, package
    # The virtual environment's own copy, not one installed in the system's site-packages.
    assert Path(sys.prefix).resolve() in package.parents, f"{package} is not inside {sys.prefix}"
    assert "COMPEFT_LIBRARY" not in os.environ
    assert Path(_native.library_path()).resolve().parent == package


@pytest.mark.skipif(os.environ.get("COMPEFT_TEST_INSTALLED") != "1", reason="only for the installed wheel (scripts/test.sh)")
def test_native_library_resolves_nothing_from_the_swift_toolchain():
    library = _native.library_path()
    ldd = subprocess.run(["ldd", library], capture_output=True, text=True, check=True).stdout
    resolved = [line.split("=>")[1].split("(")[0].strip() for line in ldd.splitlines() if "=>" in line]
    assert resolved, ldd
    assert "not found" not in ldd, ldd
    swift = shutil.which("swift")
    toolchain = str(Path(swift).resolve().parents[1]) if swift else "/opt/swift"
    for path in resolved:
        assert not path.startswith(toolchain) and "swift" not in Path(path).name.lower(), f"{path} comes from the toolchain:\n{ldd}"
    readelf = subprocess.run(["readelf", "-d", library], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", readelf)
    allowed = re.compile(r"^(libc|libm|libstdc\+\+|libgcc_s|ld-linux.*|libzstd|libhdf5.*)\.so")
    assert all(allowed.match(n) for n in needed), needed
    assert "RPATH" not in readelf and "RUNPATH" not in readelf, readelf
    exported = subprocess.run(["nm", "-D", "--defined-only", library], capture_output=True, text=True, check=True).stdout
    functions = [line.split()[-1] for line in exported.splitlines() if " T " in line]
    assert functions and all(f.startswith("compeft_") for f in functions), functions
