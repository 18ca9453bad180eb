#!/usr/bin/env python3
"""Writes the merge parity fixtures under files/merge/ (next to this script).

Every expected output comes from PEFT's own code, called as a user would call it:

* dense.safetensors + dense.json: ``peft.utils.merge_utils`` (task_arithmetic, ties with both
  majority_sign_method values, magnitude_prune, dare_linear, dare_ties) on three seeded experts per
  shape. Inputs are continuous random values, so no two magnitudes tie and torch.topk's tie order
  never matters.
* DARE draws its mask with ``torch.bernoulli`` inside ``random_pruning``. The script draws the masks
  itself (torch.rand < density, seeded), saves them, and replaces ``torch.bernoulli`` for the duration
  of the call with a stand-in that checks it was asked for a tensor full of ``density`` and returns the
  next saved mask. Nothing else of PEFT is replaced.
* lora.safetensors + lora.json: a tiny two-layer model with three LoRA adapters (one with
  use_rslora) and ``LoraModel.add_weighted_adapter`` for combination_type linear, ties, cat and svd.
* svd.safetensors + svd.json: matrices and numpy.linalg.svd's singular values.
* dare_stream.json: compeft's own seeded DARE masks (SplitMix64 → xoshiro256**), computed here by a
  second, independent implementation of the documented stream, so the Swift one is pinned to the
  spec rather than to itself.

Run from anywhere: ``python3 Fixtures/make_merge_fixtures.py``. Needs numpy, torch, peft, safetensors.
"""

import json
import os
import warnings

import numpy as np
import torch
from safetensors.numpy import save_file

import peft
import peft.utils.merge_utils as mu
from peft import LoraConfig, get_peft_model

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files", "merge")

SHAPES = [(7,), (16, 32), (64, 8)]
# The first weight set runs every density (0 and 1 are PEFT's edge paths); the second checks where the
# weights enter, at one density, to keep the files small.
WEIGHT_SETS = [([1.0, 0.5, -0.3], [0.0, 0.2, 0.5, 0.9, 1.0]), ([0.3, 1.2, 0.8], [0.5])]
EXPERTS = 3


class FixedBernoulli:
    """Stands in for torch.bernoulli: hands out prepared masks in call order."""

    def __init__(self, masks, density):
        self.masks = list(masks)
        self.density = density
        self.real = torch.bernoulli

    def __call__(self, probabilities, *args, **kwargs):
        assert not args and not kwargs
        mask = self.masks.pop(0)
        assert probabilities.shape == mask.shape
        assert torch.all(probabilities == torch.tensor(self.density, dtype=probabilities.dtype))
        return mask.to(probabilities.dtype)

    def __enter__(self):
        torch.bernoulli = self
        return self

    def __exit__(self, *exc):
        torch.bernoulli = self.real
        assert not self.masks, "PEFT drew fewer masks than prepared"


def dense_fixtures():
    tensors = {}
    cases = []
    generator = torch.Generator().manual_seed(20240611)
    for s, shape in enumerate(SHAPES):
        experts = [torch.randn(shape, generator=generator, dtype=torch.float32) for _ in range(EXPERTS)]
        names = []
        for e, x in enumerate(experts):
            name = f"input{s}.expert{e}"
            tensors[name] = x.numpy()
            names.append(name)
        # Guard the premise of the parity tests: no magnitude ties within an expert.
        for x in experts:
            a = x.abs().reshape(-1)
            assert len(torch.unique(a)) == a.numel(), "magnitude tie in a fixture input; change the seed"

        def add(method, weights, density=None, sign=None, masks=None, output=None):
            name = f"case{len(cases)}"
            tensors[name] = output.numpy()
            case = {"name": name, "method": method, "shape": list(shape), "inputs": names,
                    "weights": weights, "output": name}
            if density is not None:
                case["density"] = density
            if sign is not None:
                case["majority_sign_method"] = sign
            if masks is not None:
                mask_names = []
                for e, m in enumerate(masks):
                    mask_name = f"{name}.mask{e}"
                    tensors[mask_name] = m.numpy().astype(np.uint8)
                    mask_names.append(mask_name)
                case["masks"] = mask_names
            cases.append(case)

        for weights, densities in WEIGHT_SETS:
            w = torch.tensor(weights)  # float32, as add_weighted_adapter builds it
            add("task_arithmetic", weights, output=mu.task_arithmetic(experts, w))
            for density in densities:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # density 1.0 warns that nothing is pruned
                    add("magnitude_prune", weights, density=density,
                        output=mu.magnitude_prune(experts, w, density))
                    for sign in ["total", "frequency"]:
                        add("ties", weights, density=density, sign=sign,
                            output=mu.ties(experts, w, density, sign))
                    if density == 0.0:
                        continue  # PEFT divides by the density: 0/0
                    masks = [(torch.rand(shape, generator=generator) < density).to(torch.float32)
                             for _ in range(EXPERTS)]
                    # density ≥ 1 returns before drawing a mask: nothing to hand out then.
                    drawn = masks if density < 1 else []
                    with FixedBernoulli(drawn, density):
                        out = mu.dare_linear(experts, w, density)
                    add("dare_linear", weights, density=density, masks=masks, output=out)
                    for sign in ["total", "frequency"]:
                        with FixedBernoulli(drawn, density):
                            out = mu.dare_ties(experts, w, density, sign)
                        add("dare_ties", weights, density=density, sign=sign, masks=masks, output=out)
    return tensors, cases


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(12, 10, bias=False)
        self.down = torch.nn.Linear(10, 6, bias=False)

    def forward(self, x):
        return self.down(self.up(x))


def lora_fixtures():
    torch.manual_seed(7)
    generator = torch.Generator().manual_seed(99)
    adapters = [
        ("a0", LoraConfig(r=4, lora_alpha=8, target_modules=["up", "down"])),
        ("a1", LoraConfig(r=4, lora_alpha=16, target_modules=["up", "down"])),
        ("a2", LoraConfig(r=4, lora_alpha=6, use_rslora=True, target_modules=["up", "down"])),
        ("c0", LoraConfig(r=2, lora_alpha=4, target_modules=["up", "down"])),
        ("c1", LoraConfig(r=3, lora_alpha=3, target_modules=["up", "down"])),
    ]
    model = get_peft_model(Tiny(), adapters[0][1], adapter_name=adapters[0][0])
    for name, config in adapters[1:]:
        model.add_adapter(name, config)
    tensors = {}
    layers = {"up": model.base_model.model.up, "down": model.base_model.model.down}
    info = {"adapters": {}, "layers": {}, "merges": []}
    for layer_name, layer in layers.items():
        info["layers"][layer_name] = {"in_features": layer.in_features, "out_features": layer.out_features}
        for name, config in adapters:
            with torch.no_grad():
                a = torch.randn(layer.lora_A[name].weight.shape, generator=generator)
                b = torch.randn(layer.lora_B[name].weight.shape, generator=generator)
                layer.lora_A[name].weight.copy_(a)
                layer.lora_B[name].weight.copy_(b)
            tensors[f"{layer_name}.{name}.A"] = a.numpy()
            tensors[f"{layer_name}.{name}.B"] = b.numpy()
            tensors[f"{layer_name}.{name}.delta"] = layer.get_delta_weight(name).detach().numpy()
    for name, config in adapters:
        info["adapters"][name] = {"r": config.r, "lora_alpha": config.lora_alpha, "use_rslora": config.use_rslora,
                                  "scaling": layers["up"].scaling[name]}

    merges = [
        ("m_linear", ["a0", "a1", "a2"], [1.0, 0.5, -0.3], "linear", {}),
        ("m_ties", ["a0", "a1", "a2"], [1.0, 0.5, -0.3], "ties", {"density": 0.5}),
        ("m_ties_freq", ["a0", "a1", "a2"], [0.3, 1.2, 0.8], "ties",
         {"density": 0.5, "majority_sign_method": "frequency"}),
        ("m_prune", ["a0", "a1", "a2"], [1.0, 0.5, -0.3], "magnitude_prune", {"density": 0.5}),
        ("m_cat", ["a0", "c0", "c1"], [1.0, -0.5, 0.7], "cat", {}),
        ("m_svd", ["a0", "c0", "c1"], [1.0, -0.5, 0.7], "svd", {"svd_rank": 3}),
    ]
    for out_name, names, weights, kind, extra in merges:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.add_weighted_adapter(names, weights, out_name, combination_type=kind, **extra)
        config = model.peft_config[out_name]
        for layer_name, layer in layers.items():
            tensors[f"{layer_name}.{out_name}.A"] = layer.lora_A[out_name].weight.detach().numpy().copy()
            tensors[f"{layer_name}.{out_name}.B"] = layer.lora_B[out_name].weight.detach().numpy().copy()
        entry = {"name": out_name, "adapters": names, "weights": weights, "combination_type": kind,
                 "r": config.r, "lora_alpha": config.lora_alpha, "use_rslora": config.use_rslora}
        entry.update(extra)
        info["merges"].append(entry)
    return tensors, info


def svd_fixtures():
    rng = np.random.default_rng(31337)
    matrices = {}

    def decaying(m, n, rate):
        u, _ = np.linalg.qr(rng.standard_normal((m, m)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
        p = min(m, n)
        s = np.zeros((m, n))
        s[np.arange(p), np.arange(p)] = rate ** np.arange(p)
        return u @ s @ v.T

    matrices["tall"] = rng.standard_normal((9, 4))
    matrices["wide"] = rng.standard_normal((3, 11))
    matrices["square"] = rng.standard_normal((20, 20))
    matrices["decaying"] = decaying(24, 16, 0.6)
    matrices["rank2"] = rng.standard_normal((12, 2)) @ rng.standard_normal((2, 10))
    tensors = {}
    cases = []
    for name, a in matrices.items():
        s = np.linalg.svd(a, compute_uv=False)
        tensors[f"{name}.matrix"] = np.ascontiguousarray(a)
        tensors[f"{name}.singular_values"] = s
        cases.append({"name": name, "rows": a.shape[0], "cols": a.shape[1]})
    return tensors, cases


MASK64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def dare_mask_words(count, density, seed, tensor, expert):
    """DropMask.random: key = mix64(mix64(seed ^ fnv1a64(tensor)) ^ expert), SplitMix64 seeds xoshiro256**,
    entry i kept iff (next() >> 11) * 2^-53 < density."""
    h = 0xCBF29CE484222325
    for byte in tensor.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    state = mix64(mix64(seed ^ h) ^ expert)
    s = []
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        s.append(mix64(state))

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & MASK64

    words = [0] * ((count + 63) // 64)
    for i in range(count):
        result = (rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        if (result >> 11) * 2.0**-53 < density:
            words[i >> 6] |= 1 << (i & 63)
    return words


def dare_stream_fixtures():
    cases = []
    for count, density, seed, tensor, expert in [
        (128, 0.5, 42, "layer.0.weight", 1),
        (7, 0.2, 0, "", 0),
        (200, 0.9, 2**64 - 1, "base_model.model.q_proj.lora_A.weight", 2),
        (65, 0.05, 123456789, "ünïcode", 0),
    ]:
        words = dare_mask_words(count, density, seed, tensor, expert)
        cases.append({"count": count, "density": density, "seed": str(seed), "tensor": tensor, "expert": expert,
                      "words": [str(w) for w in words]})
    return cases


def compact(document):
    """JSON with one case per line: small, and still diffable."""
    lines = ",\n".join(json.dumps(c, separators=(",", ":")) for c in document["cases"])
    head = json.dumps({k: v for k, v in document.items() if k != "cases"}, separators=(",", ":"))
    separator = "," if len(head) > 2 else ""
    return head[:-1] + separator + '"cases":[\n' + lines + "\n]}\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"peft": peft.__version__, "torch": torch.__version__, "numpy": np.__version__}

    tensors, cases = dense_fixtures()
    save_file(tensors, os.path.join(OUT, "dense.safetensors"))
    with open(os.path.join(OUT, "dense.json"), "w") as f:
        f.write(compact({"versions": versions, "cases": cases}))

    tensors, info = lora_fixtures()
    save_file(tensors, os.path.join(OUT, "lora.safetensors"))
    with open(os.path.join(OUT, "lora.json"), "w") as f:
        json.dump({"versions": versions, **info}, f, indent=1)

    tensors, cases = svd_fixtures()
    save_file(tensors, os.path.join(OUT, "svd.safetensors"))
    with open(os.path.join(OUT, "svd.json"), "w") as f:
        json.dump({"versions": versions, "cases": cases}, f, indent=1)

    with open(os.path.join(OUT, "dare_stream.json"), "w") as f:
        f.write(compact({"cases": dare_stream_fixtures()}))

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT}: {total} bytes")
    assert total < 500_000


if __name__ == "__main__":
    main()
