#!/usr/bin/env python3
"""The fidelity benchmark's LoRA rule `svd-best` (Benchmarks/Fidelity/rules.py, the numpy prototype that
docs/FIDELITY.md specifies), run on a PEFT LoRA adapter folder: the oracle the Swift tests compare
`compeft compress` with (Tests/AdapterFormatTests/LoRARuleParityTests.swift).

Usage:
    python3 Fixtures/reference_lora_rule.py ADAPTER --density K [--gauge auto|svd|svd-dct]
        --out OUT.safetensors --json STATS.json

Reads the adapter's LoRA factors as binary32 residuals (init 0; bf16 widened exactly), runs
`rules._lora_global` in the SVD gauge and in the DCT-rotated SVD gauge (one global top-k over all factors,
a per-module product-norm scale stored as binary32(sqrt c) on both factors, P = 0 -> zeros), keeps the gauge
with the smaller total product error (ties: SVD) for `--gauge auto`, and writes:

  OUT.safetensors  every LoRA factor's ternary residual in binary32 (the rule's output);
  STATS.json       {"gauge": chosen, "errors": {gauge: total squared product error}, "norm2": sum of ||BA||^2,
                    "threshold": {gauge: the threshold}, "factors": {name: [binary64 gauge values of the chosen
                    gauge, row-major]}}.
"""

import argparse
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "Benchmarks", "Fidelity"))

import reference_compeft  # noqa: E402  (the fixture reader)
import rules  # noqa: E402  (the prototype)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("adapter")
    ap.add_argument("--density", type=float, required=True)
    ap.add_argument("--gauge", default="auto", choices=["auto", "svd", "svd-dct"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)

    _, tensors = reference_compeft.read_safetensors(os.path.join(args.adapter, "adapter_model.safetensors"))
    res = {name: t.to_f32().astype(np.float32) for name, t in tensors.items() if ".lora_" in name}
    pairs = rules.lora_pairs(list(res))
    gauges = {"svd": rules.svd_gauge, "svd-dct": rules.svd_dct_gauge}
    tried = ["svd", "svd-dct"] if args.gauge == "auto" else [args.gauge]
    outs, errors, thresholds = {}, {}, {}
    for g in tried:
        outs[g], errors[g] = rules._lora_global(res, gauges[g], args.density)
        fac = {}
        for a, b in pairs:
            fac[a], fac[b] = gauges[g](res[a], res[b])
        thresholds[g] = rules.global_threshold(list(fac.values()), args.density)
    chosen = tried[0] if len(tried) == 1 or errors["svd"] <= errors["svd-dct"] else "svd-dct"
    norm2 = sum(rules.product_norm2(*gauges["svd"](res[a], res[b])) for a, b in pairs)
    factors = {}
    for a, b in pairs:
        fa, fb = gauges[chosen](res[a], res[b])
        factors[a], factors[b] = fa.ravel().tolist(), fb.ravel().tolist()
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in outs[chosen].items()}, args.out)
    with open(args.json, "w") as f:
        json.dump({"gauge": chosen, "errors": errors, "norm2": norm2, "threshold": thresholds, "factors": factors}, f)


if __name__ == "__main__":
    main()
