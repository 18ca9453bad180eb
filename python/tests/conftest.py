"""Shared fixtures: the repository's real PEFT fixtures (Fixtures/files), containers compressed from them
with the package under test, and their decompressed folders.

The suite runs against whatever `import compeft` finds: scripts/test.sh runs it in a fresh virtual
environment with the wheel installed (and sets COMPEFT_TEST_INSTALLED=1, which test_package.py checks).
torch/peft tests skip when those are missing, unless COMPEFT_REQUIRE_TORCH=1 (set by scripts/test.sh), which
turns the skip into a failure: a test CI skips is a test CI does not have.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

import pytest

import compeft

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "Fixtures" / "files"

ADAPTERS = ["lora-bert-seqcls", "ia3-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16"]
BASES = {"lora-bert-seqcls": "tiny-bert", "ia3-bert-seqcls": "tiny-bert", "lora-gpt2-bf16": "tiny-gpt2", "ia3-gpt2-f16": "tiny-gpt2"}


def require(module: str):
    """Imports `module`, or skips (fails under COMPEFT_REQUIRE_TORCH=1) when it is not installed."""
    if os.environ.get("COMPEFT_REQUIRE_TORCH") == "1":
        return __import__(module)
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compeft")


@pytest.fixture(scope="session")
def containers(workdir: Path) -> dict[str, Path]:
    """Every adapter fixture, the residual file and the full fine-tune compressed at density 10."""
    made = {}
    for name in ADAPTERS + ["residual.safetensors"]:
        out = workdir / (name.replace(".safetensors", "") + ".cpeft")
        compeft.compress(FIXTURES / name, out, density=10)
        made[name] = out
    out = workdir / "full-ft.cpeft"
    compeft.compress(FIXTURES / "full-ft", out, base=FIXTURES / "tiny-bert", density=10)
    made["full-ft"] = out
    return made


@pytest.fixture(scope="session")
def decompressed(containers: dict[str, Path], workdir: Path) -> dict[str, Path]:
    """What `compeft decompress` writes for each container (a folder, or a .safetensors file)."""
    made = {}
    for name, container in containers.items():
        out = workdir / ("restored-" + name)
        compeft.decompress(container, out)
        made[name] = out
    return made


@pytest.fixture()
def fresh(tmp_path: Path):
    """A writable copy of a container, for tests that damage it."""

    def copy(source: Path, name: str = "copy.cpeft") -> Path:
        target = tmp_path / name
        shutil.copyfile(source, target)
        return target

    return copy


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as numpy arrays, read from the format's own header (numpy has no
    bfloat16: BF16 tensors come back as float32, the bits widened, which is exact)."""
    from safetensors import safe_open

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    with safe_open(str(path), framework="np") as st:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] == "BF16":
                start, end = info["data_offsets"]
                bits = np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << np.uint32(16)
                tensors[name] = bits.view(np.float32).reshape(info["shape"])
            else:
                tensors[name] = st.get_tensor(name)
    return tensors


@pytest.fixture(scope="session")
def cli() -> str:
    """The `compeft` command line ($COMPEFT_CLI; scripts/test-python.sh sets it to the debug build)."""
    path = os.environ.get("COMPEFT_CLI")
    if not path or not Path(path).exists():
        if os.environ.get("COMPEFT_REQUIRE_TORCH") == "1":
            pytest.fail(f"COMPEFT_CLI ({path}) is not the compeft binary")
        pytest.skip("COMPEFT_CLI does not name the compeft binary (scripts/test-python.sh sets it)")
    return path
