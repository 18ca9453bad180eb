"""compeft.open and Container: what a container holds, and decoding one tensor at a time with numpy
(no torch), checked against `compeft decompress` output read by the safetensors package and against the
NumPy reference implementation of ComPEFT (Fixtures/reference_compeft.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import compeft

from conftest import ADAPTERS, FIXTURES, REPO, read_safetensors


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns, to nearest, ties to even (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float32)
    flat = np.ascontiguousarray(x.reshape(-1))
    bits = flat.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(flat)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded.reshape(x.shape)


def f32_files(container: Path, tmp: Path) -> dict[str, np.ndarray]:
    """Every tensor of `compeft decompress --dtype f32` output, read with safetensors (numpy)."""
    out = tmp / "f32"
    compeft.decompress(container, out, dtype="f32")
    files = [out] if out.is_file() else sorted(out.glob("*.safetensors"))
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        tensors.update(read_safetensors(f))
    return tensors


def test_open_lists_tensors_config_and_metadata(containers):
    with compeft.open(containers["lora-bert-seqcls"]) as c:
        assert len(c) == 10 and "base_model.model.classifier.weight" in c
        names = list(c.tensors)
        assert names == sorted(names, key=lambda n: n.encode())
        assert [t.index for t in c.tensors.values()] == list(range(10))
        head = c.tensors["base_model.model.classifier.weight"]
        assert (head.shape, head.dtype, head.role, head.encoding, head.count) == ((3, 64), "F32", "exact", "raw", 192)
        a = c.tensors["base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"]
        assert (a.shape, a.role, a.init, a.encoding) == ((8, 64), "residual", "zero", "ternary-gap")
        assert 0 < a.nonzero <= a.kept <= a.count and a.scale > 0 and 0 < a.density < 1
        assert c.adapter_config_json == (FIXTURES / "lora-bert-seqcls/adapter_config.json").read_text()
        assert c.adapter_config["peft_type"] == "LORA" and c.adapter_config["r"] == 8
        meta = c.metadata
        assert meta["inputKind"] == "peft-adapter" and meta["peftType"] == "LORA"
        assert [t["name"] for t in meta["tensors"]] == names
        meta["tool"] = "changed"  # a copy: the container's stays as it is
        assert c.metadata["tool"] != "changed"
        report = c.inspect()
        assert report["peft_type"] == "LORA" and len(report["tensors"]) == 10 and report["format_version"].startswith("1.")
        assert "Container" in repr(c) and "10 tensors" in repr(c)
    assert c.closed and "closed" in repr(c)


def test_a_container_that_is_not_an_adapter_has_no_config(containers):
    with compeft.open(containers["residual.safetensors"]) as c:
        assert c.adapter_config is None and c.adapter_config_json is None
        assert c.tensors["layers.1.scale"].shape == () and c.tensors["layers.3.empty"].shape == (0, 8)


@pytest.mark.parametrize("name", ADAPTERS + ["residual.safetensors", "full-ft"])
def test_decode_equals_decompress_in_every_output_type(name, containers, tmp_path):
    expected = f32_files(containers[name], tmp_path)
    with compeft.open(containers[name]) as c:
        assert set(expected) == set(c.tensors)
        for info in c.tensors.values():
            if not info.is_float:
                values = c.decode(info.name)  # stored exactly, in its own type
                assert values.dtype == expected[info.name].dtype and np.array_equal(values, expected[info.name])
                with pytest.raises(compeft.UnsupportedError, match=info.name):
                    c.decode(info.name, dtype="float32")
                continue
            f32 = c.decode(info.name, dtype="float32")
            assert f32.shape == info.shape and f32.dtype == np.float32
            assert f32.tobytes() == np.ascontiguousarray(expected[info.name], dtype=np.float32).tobytes(), info.name
            assert np.array_equal(c.decode(info.name, dtype=np.float16), f32.astype(np.float16), equal_nan=True)
            bits = c.decode(info.name, dtype="bf16")
            assert bits.dtype == np.uint16 and np.array_equal(bits, bf16_bits(f32))
            default = c.decode(info.name)
            assert default.dtype == (np.float16 if info.dtype == "F16" else np.float32)


def test_decoded_values_equal_the_numpy_reference_implementation(containers, tmp_path):
    """Independent oracle: Fixtures/reference_compeft.py compresses the same adapter with NumPy; the
    container must decode to exactly its output."""
    for name in ["lora-bert-seqcls", "residual.safetensors"]:
        out = tmp_path / (name.replace(".safetensors", "") + "-reference.safetensors")
        subprocess.run([sys.executable, str(REPO / "Fixtures/reference_compeft.py"), str(FIXTURES / name),
                        "--density", "10", "--out", str(out)], check=True, capture_output=True)
        reference = read_safetensors(out)
        # The reference is the paper's rule; a LoRA adapter's default is another (the SVD gauge), so name it.
        paper = tmp_path / (name.replace(".safetensors", "") + "-paper.cpeft")
        compeft.compress(FIXTURES / name, paper, density=10, scope="global", scale="global",
                         lora_gauge="trained" if name.startswith("lora") else None)
        with compeft.open(paper) as c:
            for info in c.tensors.values():
                if info.is_float and info.dtype != "F64":
                    if info.dtype == "BF16":  # the reference rounds to bf16; compare the widened bits
                        bits = c.decode(info.name, dtype="bf16").astype(np.uint32) << np.uint32(16)
                        mine = bits.view(np.float32)
                    else:
                        mine = c.decode(info.name, dtype="f16" if info.dtype == "F16" else "f32")
                    assert np.array_equal(mine, reference[info.name]), f"{name}: {info.name}"


def test_decode_into_a_numpy_buffer_fills_it_in_place(containers):
    with compeft.open(containers["lora-bert-seqcls"]) as c:
        name = "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"
        expected = c.decode(name, dtype="float32")
        out = np.full(expected.size, np.nan, dtype=np.float32)  # any shape with the same count
        address = out.ctypes.data
        assert c.decode(name, out=out) is out and out.ctypes.data == address
        assert np.array_equal(out, expected.ravel())
        half = np.empty(expected.shape, dtype=np.float16)
        c.decode(name, dtype="float16", out=half)
        assert np.array_equal(half, expected.astype(np.float16))
        bits = np.empty(expected.shape, dtype=np.uint16)
        c.decode(name, dtype="bf16", out=bits)
        assert np.array_equal(bits, bf16_bits(expected))


def test_exact_values_are_byte_for_byte_the_input(containers):
    original = read_safetensors(FIXTURES / "residual.safetensors")
    with compeft.open(containers["residual.safetensors"]) as c:
        counter = c.exact_values("step_counter")
        assert counter.dtype == np.int64 and np.array_equal(counter, original["step_counter"])
        with pytest.raises(compeft.UnsupportedError, match="compeft_decode"):
            c.exact_values("layers.10.w")


def test_decode_reads_only_its_own_payload(containers, fresh):
    """A container whose tensor B is damaged still decodes tensor A: only A's bytes are read and checked."""
    path = fresh(containers["residual.safetensors"])
    with compeft.open(path) as c:
        w = c.metadata["tensors"][[t for t in c.tensors].index("layers.10.w")]
        before = c.decode("layers.2.w", dtype="f32")
    data = bytearray(path.read_bytes())
    data[w["offset"] + w["length"] // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with compeft.open(path) as c:
        assert np.array_equal(c.decode("layers.2.w", dtype="f32"), before)
        with pytest.raises(compeft.CorruptError, match="layers.10.w"):
            c.decode("layers.10.w", dtype="f32")


def test_apply_adds_the_residual_in_place(containers):
    with compeft.open(containers["full-ft"]) as c:
        name = "bert.encoder.layer.0.attention.self.query.weight"
        tau = c.decode(name, dtype="f32")
        weights = np.sin(np.arange(tau.size, dtype=np.float32)).reshape(tau.shape)
        expected = weights + np.float32(-0.5) * tau
        c.apply(name, weights, factor=-0.5)
        assert np.array_equal(weights, expected)
        with pytest.raises(compeft.InvalidArgumentError, match="not finite"):
            c.apply(name, weights, factor=float("nan"))
