"""load_state_dict and apply against safetensors.torch on the decompressed files."""

from __future__ import annotations

import numpy as np
import pytest

import compeft

from conftest import ADAPTERS, FIXTURES, require

torch = require("torch")
from safetensors.torch import load_file  # noqa: E402  (after torch, which it needs)


def decompressed_tensors(path) -> dict:
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    tensors = {}
    for f in files:
        tensors.update(load_file(str(f)))
    return tensors


@pytest.mark.parametrize("name", ADAPTERS + ["residual.safetensors", "full-ft"])
def test_load_state_dict_equals_load_file_of_the_decompressed_output(name, containers, decompressed):
    expected = decompressed_tensors(decompressed[name])
    loaded = compeft.load_state_dict(containers[name])
    assert list(loaded) == sorted(expected, key=lambda n: n.encode())
    for key, tensor in loaded.items():
        want = expected[key]
        if want.dtype == torch.float64:  # F64 residuals are binary32 values
            assert tensor.dtype == (torch.float32 if "B.proj" in key else torch.float64)
            want = want.to(tensor.dtype)
        assert tensor.dtype == want.dtype and tensor.shape == want.shape, key
        assert torch.equal(tensor, want), key
    # One type for every float tensor: decoded straight into it, the same as casting the f32 decode once.
    f32 = compeft.load_state_dict(containers[name], dtype=torch.float32)
    for dtype in (torch.bfloat16, torch.float16):
        cast = compeft.load_state_dict(containers[name], dtype=dtype, threads=3)
        for key, tensor in cast.items():
            if tensor.is_floating_point():
                assert tensor.dtype == dtype and torch.equal(tensor, f32[key].to(dtype)), key
            else:
                assert torch.equal(tensor, f32[key]), key


def test_decode_to_torch_and_into_a_tensor(containers):
    with compeft.open(containers["lora-gpt2-bf16"]) as c:
        name = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"
        bf16 = c.decode(name, dtype=torch.bfloat16)
        assert isinstance(bf16, torch.Tensor) and bf16.dtype == torch.bfloat16 and bf16.shape == (192, 4)
        out = torch.empty(192, 4, dtype=torch.bfloat16)
        pointer = out.data_ptr()
        assert c.decode(name, out=out) is out and out.data_ptr() == pointer and torch.equal(out, bf16)
        with pytest.raises(compeft.InvalidArgumentError, match="contiguous"):
            c.decode(name, out=torch.empty(4, 192, dtype=torch.bfloat16).t())
        with pytest.raises(compeft.InvalidArgumentError, match="int32"):
            c.decode(name, out=torch.empty(192, 4, dtype=torch.int32))
        with pytest.raises(TypeError):
            c.decode(name, dtype=torch.float64)


def test_apply_a_full_fine_tune_to_its_base_model(containers, tmp_path):
    transformers = require("transformers")
    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(FIXTURES / "tiny-bert"))
    compeft.decompress(containers["full-ft"], tmp_path / "ft", base=FIXTURES / "tiny-bert")
    tuned = decompressed_tensors(tmp_path / "ft")
    changed = compeft.apply(model, containers["full-ft"])
    state = model.state_dict()
    assert len(changed) == 41
    for name in changed:
        assert torch.equal(state[name], tuned[name]), name
    # factor −1 takes the update back off (exactly, where the float32 sums round-trip)
    compeft.apply(model, containers["full-ft"], factor=-1.0)
    base = load_file(str(FIXTURES / "tiny-bert/model.safetensors"))
    close = [torch.allclose(state[n], base[n], atol=1e-6) for n in changed]
    assert all(close)


def test_apply_refuses_before_changing_anything(containers, fresh):
    transformers = require("transformers")
    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(FIXTURES / "tiny-bert"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(compeft.NotFoundError, match="not in the model"):
        compeft.apply(model, containers["lora-bert-seqcls"])
    path = fresh(containers["full-ft"])
    with compeft.open(path) as c:
        entry = c.metadata["tensors"][-1]
    data = bytearray(path.read_bytes())
    data[entry["offset"] + entry["length"] // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(compeft.CorruptError, match=entry["name"]):
        compeft.apply(model, path)
    with pytest.raises(compeft.InvalidArgumentError, match="float32"):
        compeft.apply({k: v.double() for k, v in model.state_dict().items()}, containers["full-ft"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
