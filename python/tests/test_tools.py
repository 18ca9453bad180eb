"""compress, decompress, merge, inspect and verify: the command line's operations as functions."""

from __future__ import annotations

import json

import numpy as np

import compeft

from conftest import FIXTURES, read_safetensors


def test_compress_reports_and_writes_a_container(tmp_path):
    out = tmp_path / "e.cpeft"
    report = compeft.compress(FIXTURES / "lora-bert-seqcls", out, density=10)
    assert report["output"] == str(out) and report["output_bytes"] == out.stat().st_size
    assert report["input_kind"] == "peft-adapter" and report["ratio"] > 5
    assert report["compression"]["density"] == 10 and report["compression"]["method"] == "compeft"
    assert len(report["tensors"]) == 10
    assert compeft.verify(out) == {"file": str(out), "ok": True, "checked": 11, "problems": []}
    assert compeft.inspect(out)["compression"] == report["compression"]


def test_compress_is_deterministic_and_takes_every_option(tmp_path):
    a, b = tmp_path / "a.cpeft", tmp_path / "b.cpeft"
    compeft.compress(FIXTURES / "residual.safetensors", a, density=5, threads=1)
    compeft.compress(FIXTURES / "residual.safetensors", b, density=5, threads=2)
    assert a.read_bytes() == b.read_bytes()
    c = tmp_path / "c.cpeft"
    report = compeft.compress(FIXTURES / "lora-gpt2-bf16", c, density=30, alpha=2, method="stc", scope="tensor",
                              compress_all=True, init="zero", zstd_level=3)
    assert report["compression"]["method"] == "stc" and report["compression"]["scope"] == "tensor"
    compeft.compress(FIXTURES / "lora-gpt2-bf16", c, density=30, force=True)
    full = tmp_path / "ft.cpeft"
    assert compeft.compress(FIXTURES / "full-ft", full, base=FIXTURES / "tiny-bert")["input_kind"] == "full-fine-tune"


def test_decompress_gives_a_folder_peft_reads(containers, tmp_path):
    out = tmp_path / "restored"
    report = compeft.decompress(containers["lora-bert-seqcls"], out)
    assert report["folder"] is True and sorted(report["files"]) == ["adapter_config.json", "adapter_model.safetensors"]
    assert (out / "adapter_config.json").read_bytes() == (FIXTURES / "lora-bert-seqcls/adapter_config.json").read_bytes()
    h5 = tmp_path / "r.h5"
    assert compeft.decompress(containers["residual.safetensors"], h5, format="hdf5")["folder"] is False and h5.exists()
    weights = tmp_path / "ft"
    compeft.decompress(containers["full-ft"], weights, base=FIXTURES / "tiny-bert", dtype="f32")
    assert (weights / "model.safetensors.index.json").exists()


def test_merge_writes_each_destination(containers, tmp_path):
    second = tmp_path / "b.cpeft"
    compeft.compress(FIXTURES / "lora-bert-seqcls", second, density=30)
    inputs = [containers["lora-bert-seqcls"], second]
    report = compeft.merge(inputs, tmp_path / "m.cpeft", method="ties", density=50, weights=[1, 0.5], out_density=10)
    assert report["destination"] == "cpeft" and report["method"] == "ties" and report["weights"] == [1, 0.5]
    assert report["election"] == "total" and len(report["lora_modules"]) == 4
    assert compeft.verify(tmp_path / "m.cpeft")["ok"]
    folder = compeft.merge(inputs, tmp_path / "m", method="dare-ties", seed=7, lambda_=0.5)
    assert folder["destination"] == "folder" and folder["seed"] == 7 and folder["lambda"] == 0.5
    assert json.loads((tmp_path / "m/adapter_config.json").read_text())["peft_type"] == "LORA"
    single = compeft.merge([containers["residual.safetensors"]] * 2, tmp_path / "m.safetensors")
    assert single["destination"] == "safetensors"
    merged = read_safetensors(tmp_path / "m.safetensors")
    with compeft.open(containers["residual.safetensors"]) as c:
        twice = 2 * c.decode("layers.10.w", dtype="f32")
    assert np.allclose(merged["layers.10.w"], twice)
