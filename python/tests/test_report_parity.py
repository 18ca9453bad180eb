"""The package's reports are the command line's --json reports, key for key and value for value (the C
ABI builds them in Sources/CompeftC/Functions/ReportJSON.swift; the CLI in Sources/compeft/Reports)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import compeft

from conftest import FIXTURES


def run(cli: str, *args: str, ok: tuple[int, ...] = (0,)) -> dict:
    done = subprocess.run([cli, *args, "--json"], capture_output=True, text=True)
    assert done.returncode in ok, done.stderr
    return json.loads(done.stdout)


def same(mine: dict, theirs: dict, rename: dict[str, str]) -> None:
    """Equal after replacing the CLI's output paths with the package's."""
    text = json.dumps(theirs, sort_keys=True)
    for a, b in rename.items():
        text = text.replace(json.dumps(a)[1:-1], json.dumps(b)[1:-1])
    assert json.loads(json.dumps(mine, sort_keys=True)) == json.loads(text)


def test_compress_inspect_verify_decompress(cli, tmp_path):
    adapter = str(FIXTURES / "lora-bert-seqcls")
    a, b = str(tmp_path / "a.cpeft"), str(tmp_path / "b.cpeft")
    same(compeft.compress(adapter, a, density=10, scope="tensor"),
         run(cli, "compress", adapter, "-o", b, "--density", "10", "--scope", "tensor"), {b: a})
    same(compeft.inspect(a), run(cli, "inspect", b), {b: a})
    same(compeft.verify(a), run(cli, "verify", b), {b: a})
    ra, rb = str(tmp_path / "ra"), str(tmp_path / "rb")
    same(compeft.decompress(a, ra, dtype="bf16"), run(cli, "decompress", b, "-o", rb, "--dtype", "bf16"), {b: a, rb: ra})
    broken = tmp_path / "broken.cpeft"
    broken.write_bytes(Path(a).read_bytes()[:100])
    same(compeft.verify(broken), run(cli, "verify", str(broken), ok=(1,)), {})


def test_merge(cli, tmp_path):
    first = str(tmp_path / "one.cpeft")
    compeft.compress(FIXTURES / "lora-bert-seqcls", first, density=30)
    inputs = [first, str(FIXTURES / "lora-bert-seqcls")]
    a, b = str(tmp_path / "a.cpeft"), str(tmp_path / "b.cpeft")
    same(compeft.merge(inputs, a, method="dare-ties", density=50, weights=[1, 0.5], seed=3, rank=4, out_density=10),
         run(cli, "merge", *inputs, "-o", b, "--method", "dare-ties", "--density", "50", "--weights", "1,0.5",
             "--seed", "3", "--rank", "4", "--out-density", "10"), {b: a})
