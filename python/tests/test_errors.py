"""Bad input raises a CompeftError subclass with the library's message and status code, naming the file
and tensor; nothing crashes the interpreter."""

from __future__ import annotations

import random

import numpy as np
import pytest

import compeft

from conftest import FIXTURES

NAME = "layers.10.w"  # 300 × 200 F32 in residual.cpeft


def damaged(path, offset: int, mask: int = 0x40):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def test_errors_carry_message_status_and_function(tmp_path):
    with pytest.raises(compeft.CompeftIOError) as caught:
        compeft.open(tmp_path / "missing.cpeft")
    e = caught.value
    assert isinstance(e, compeft.CompeftError) and isinstance(e, OSError)
    assert e.status == 7 and e.code == "COMPEFT_ERR_IO" and e.function == "compeft_open"
    assert "missing.cpeft" in str(e) and "missing.cpeft" in e.message and "COMPEFT_ERR_IO" in repr(e)
    with pytest.raises(compeft.CompeftIOError):
        compeft.open(tmp_path)  # a directory


def test_files_that_are_not_intact_containers(tmp_path, containers):
    for name, content in [("empty.cpeft", b""), ("text.cpeft", b"hello world" * 10),
                          ("safetensors.cpeft", (FIXTURES / "residual.safetensors").read_bytes()),
                          ("truncated.cpeft", containers["residual.safetensors"].read_bytes()[:1000])]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(compeft.CorruptError) as caught:
            compeft.open(path)
        assert caught.value.status == 5 and name in str(caught.value)
        report = compeft.verify(path)
        assert report["ok"] is False and report["checked"] == 0 and name in report["problems"][0]
    newer = tmp_path / "newer.cpeft"
    data = bytearray(containers["residual.safetensors"].read_bytes())
    data[8] = 2
    newer.write_bytes(bytes(data))
    with pytest.raises(compeft.UnsupportedError, match="version 2"):
        compeft.open(newer)


def test_a_corrupt_payload_raises_naming_the_tensor(containers, fresh):
    path = fresh(containers["residual.safetensors"])
    with compeft.open(path) as c:
        entry = next(t for t in c.metadata["tensors"] if t["name"] == NAME)
    damaged(path, entry["offset"] + entry["length"] // 2)
    with compeft.open(path) as c:
        for call in (lambda: c.decode(NAME), lambda: c.decode(NAME, dtype="bf16"),
                     lambda: c.decode(NAME, out=np.empty(60000, np.float32))):
            with pytest.raises(compeft.CorruptError, match=f"tensor '{NAME}'") as caught:
                call()
            assert caught.value.code == "COMPEFT_ERR_CORRUPT" and "checksum" in str(caught.value)
        weights = np.ones((300, 200), np.float32)
        with pytest.raises(compeft.CorruptError, match=NAME):
            c.apply(NAME, weights)
        assert np.all(weights == 1)  # untouched
    report = compeft.verify(path)
    assert report["ok"] is False and any(NAME in p for p in report["problems"])


def test_wrong_dtype_or_buffer_raises(containers):
    with compeft.open(containers["residual.safetensors"]) as c:
        for bad in ["float64", "int8", np.int32, object, 3]:
            with pytest.raises(TypeError):
                c.decode(NAME, dtype=bad)
        with pytest.raises(compeft.NotFoundError, match="no.such") as caught:
            c.decode("no.such")
        assert isinstance(caught.value, KeyError) and str(caught.value).endswith("'no.such'")
        with pytest.raises(compeft.BufferTooSmallError, match="holds 59999 values"):
            c.decode(NAME, out=np.empty(59999, np.float32))
        with pytest.raises(compeft.InvalidArgumentError, match="right tensor"):
            c.decode(NAME, out=np.empty(60001, np.float32))
        with pytest.raises(compeft.InvalidArgumentError, match="float64"):
            c.decode(NAME, out=np.empty(60000, np.float64))
        with pytest.raises(compeft.InvalidArgumentError, match="dtype='bf16'"):
            c.decode(NAME, out=np.empty(60000, np.uint16))
        with pytest.raises(compeft.InvalidArgumentError, match="but dtype"):
            c.decode(NAME, dtype="f16", out=np.empty(60000, np.float32))
        with pytest.raises(compeft.InvalidArgumentError, match="contiguous"):
            c.decode(NAME, out=np.empty((200, 300), np.float32).T)
        readonly = np.empty(60000, np.float32)
        readonly.flags.writeable = False
        with pytest.raises(compeft.InvalidArgumentError, match="read-only"):
            c.decode(NAME, out=readonly)
        with pytest.raises(TypeError):
            c.decode(NAME, out=[0.0] * 60000)
        with pytest.raises(compeft.BufferTooSmallError):
            c.apply(NAME, np.empty(10, np.float32))


def test_a_closed_container_raises(containers):
    c = compeft.open(containers["lora-bert-seqcls"])
    c.close()
    c.close()  # twice is fine
    with pytest.raises(compeft.BadHandleError, match="closed"):
        c.decode("base_model.model.classifier.bias")
    with pytest.raises(compeft.BadHandleError):
        c.metadata


def test_bad_options_and_paths_raise_before_writing(tmp_path, containers):
    out = tmp_path / "out.cpeft"
    adapter = FIXTURES / "lora-bert-seqcls"
    for kwargs, message in [({"density": 0}, "density"), ({"density": 101}, "density"), ({"alpha": -1}, "alpha"),
                            ({"method": "zip"}, "method"), ({"scope": "layer"}, "scope"), ({"init": "base"}, "init"),
                            ({"threads": 0}, "threads"), ({"zstd_level": 0}, "zstd_level")]:
        with pytest.raises(compeft.InvalidArgumentError, match=message):
            compeft.compress(adapter, out, **kwargs)
    with pytest.raises(compeft.InvalidArgumentError, match="standard input"):
        compeft.compress(adapter, "-")
    with pytest.raises(compeft.CompeftIOError, match="missing"):
        compeft.compress(tmp_path / "missing", out)
    with pytest.raises(compeft.CompeftIOError, match="overwrite the input"):
        compeft.compress(containers["lora-bert-seqcls"], containers["lora-bert-seqcls"], force=True)
    assert not out.exists()
    compeft.compress(adapter, out, density=10)
    with pytest.raises(compeft.CompeftIOError, match="already exists"):
        compeft.compress(adapter, out, density=10)
    with pytest.raises(compeft.InvalidArgumentError, match="2 input"):
        compeft.merge([out, out], tmp_path / "m.cpeft", weights=[1, 2, 3])
    with pytest.raises(compeft.InvalidArgumentError, match="apply to a .cpeft output"):
        compeft.merge([out, out], tmp_path / "m", out_density=10)
    with pytest.raises(compeft.InvalidArgumentError, match="at least one input"):
        compeft.merge([], tmp_path / "m.cpeft")
    with pytest.raises(compeft.InvalidArgumentError, match="dtype"):
        compeft.decompress(out, tmp_path / "d", dtype="f64")


def test_random_damage_never_crashes(containers, fresh):
    """Flip bytes all over a container (seeded): every outcome is a value or a CompeftError."""
    source = containers["lora-bert-seqcls"].read_bytes()
    rng = random.Random(20251202)
    outcomes = {"opened": 0, "refused": 0, "decoded": 0, "corrupt": 0}
    path = fresh(containers["lora-bert-seqcls"])
    for trial in range(150):
        data = bytearray(source)
        for _ in range(rng.choice([1, 2, 8])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            c = compeft.open(path)
        except compeft.CompeftError:
            outcomes["refused"] += 1
            continue
        outcomes["opened"] += 1
        with c:
            for name in c.tensors:
                try:
                    c.decode(name)
                    outcomes["decoded"] += 1
                except compeft.CompeftError as e:
                    assert e.status in (5, 6), e
                    outcomes["corrupt"] += 1
        assert compeft.verify(path)["ok"] in (True, False)
    assert outcomes["refused"] > 0 and outcomes["corrupt"] > 0, outcomes
