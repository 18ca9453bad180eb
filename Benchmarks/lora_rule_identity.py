#!/usr/bin/env python3
"""Checks that two compeft builds write byte-identical containers for LoRA inputs: the guard for speed work on
the LoRA rule (gauge transforms, module products), which must not change a single bit of any container.

    python3 Benchmarks/lora_rule_identity.py --baseline /path/to/main/compeft [--candidate .build/release/compeft]
                                             [--quick] [--keep DIR]

Inputs (seeded): PEFT LoRA adapters of ranks 1, 2, 7, 8, 16, 33 and 96, with r > min(in, out) modules, zero
modules (A, B or both 0), a module with a zero row/column, tiny (subnormal), huge and mixed magnitudes, exact
ties, conv and embedding factors, a LoRA bias and an unpaired factor beside them; plus the LoRA adapters of
Fixtures/files and the README's example. Each is compressed by both builds under every gauge (trained, svd,
svd-dct, auto, and the default), scale (module, tensor, global), densities 1, 5, 10 and 30 %, scopes global and
tensor, and --threads 1 (and 2 for the default, auto and svd gauges), and the sha256 of the two containers compared. Prints one line per mismatch and
a summary; exits 1 on any mismatch or failure of one build where the other succeeded.
"""
import argparse, hashlib, itertools, json, os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def config(folder, rank):
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q", "v"],
                   "base_model_name_or_path": "synthetic", "task_type": "CAUSAL_LM", "bias": "none"}, f)


def module(rng, r, n_in, n_out, kind="gauss", scale_b=0.1):
    a = rng.standard_normal((r, n_in)) / np.sqrt(max(n_in, 1))
    b = rng.standard_normal((n_out, r)) * scale_b * (0.8 ** np.arange(r))
    if kind == "zeroA": a[:] = 0
    if kind == "zeroB": b[:] = 0
    if kind == "zero": a[:], b[:] = 0, 0
    if kind == "tiny": a, b = a * 1e-38, b * 1e-39          # subnormal binary32 entries
    if kind == "huge": a, b = a * 1e18, b * 1e17
    if kind == "mixed":
        a[: r // 2] *= 1e-20
        b[:, r // 2:] *= 1e15
    if kind == "ties":
        a = np.round(a * 4 * np.sqrt(n_in)) / 4
        b = np.round(b * 40) / 4
    if kind == "holes":
        a[:, ::3] = 0
        b[::2] = 0
        if r > 1: a[r - 1] = 0
    if kind == "rankdef" and r > 1:
        a[1:] = a[:1] * np.arange(1, r)[:, None]            # rank 1 product
    return a.astype(np.float32), b.astype(np.float32)


def adapter(folder, seed, specs, extras=True):
    """specs: (r, in, out, kind) per module."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for m, (r, n_in, n_out, kind) in enumerate(specs):
        prefix = f"base_model.model.layers.{m}.attn.q"
        a, b = module(rng, r, n_in, n_out, kind)
        tensors[f"{prefix}.lora_A.weight"], tensors[f"{prefix}.lora_B.weight"] = a, b
    if extras:
        r = specs[0][0]
        tensors["base_model.model.conv.lora_A.weight"] = rng.standard_normal((r, 3, 2, 2)).astype(np.float32)
        tensors["base_model.model.conv.lora_B.weight"] = (rng.standard_normal((5, r, 1, 1)) * 0.05).astype(np.float32)
        tensors["base_model.model.embed.lora_embedding_A"] = rng.standard_normal((r, 11)).astype(np.float32)
        tensors["base_model.model.embed.lora_embedding_B"] = (rng.standard_normal((6, r)) * 0.02).astype(np.float32)
        tensors["base_model.model.layers.0.attn.q.lora_B.bias"] = rng.standard_normal(7).astype(np.float32)
        tensors["base_model.model.orphan.lora_A.weight"] = rng.standard_normal((r, 4)).astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
    config(folder, specs[0][0])
    return folder


def inputs(tmp, quick):
    kinds = ["gauss", "zeroA", "zeroB", "zero", "tiny", "huge", "mixed", "ties", "holes", "rankdef"]
    out = []
    for r in (1, 2, 7, 8, 16, 33, 96):
        n = 24 if quick else 40
        specs = [(r, n + 3 * i, n + 5 - i, kinds[(i + r) % len(kinds)]) for i in range(4 if quick else 6)]
        specs.append((r, max(1, r // 2), r + 3, "gauss"))      # r > in
        specs.append((r, r + 9, max(1, r // 3), "gauss"))      # r > out
        specs.append((r, 1, 1, "gauss"))                       # r > in = out = 1
        out.append(adapter(os.path.join(tmp, f"r{r}"), r, specs))
    for kind in kinds:
        out.append(adapter(os.path.join(tmp, f"k-{kind}"), 100 + len(out), [(8, 64, 48, kind)] * 2 + [(8, 64, 48, "gauss")], extras=False))
    # A larger one, so the lane kernels run full blocks and several tiles of A.
    out.append(adapter(os.path.join(tmp, "wide"), 7, [(96, 700, 520, "gauss"), (48, 300, 900, "holes"), (33, 257, 129, "mixed")], extras=False))
    files = os.path.join(ROOT, "Fixtures", "files")
    out += [os.path.join(files, d) for d in ("lora-bert-seqcls", "lora-gpt2-bf16")]
    out.append(os.path.join(files, "merge", "lora.safetensors"))
    return out


def option_sets(quick):
    gauges = [[], ["--lora-gauge", "trained"], ["--lora-gauge", "svd"], ["--lora-gauge", "svd-dct"], ["--lora-gauge", "auto"]]
    scales = [[], ["--scale", "module"], ["--scale", "tensor"], ["--scale", "global"]]
    densities = ["1", "5", "10", "30"] if not quick else ["1", "10", "30"]
    for g, s, d in itertools.product(gauges, scales, densities):
        yield g + s + ["--density", d]
    for d in densities:
        yield ["--scope", "tensor", "--scale", "module", "--lora-gauge", "auto", "--density", d]
        yield ["--scope", "tensor", "--lora-gauge", "svd", "--density", d]
        yield ["--method", "stc", "--lora-gauge", "svd-dct", "--density", d]


def compress(binary, source, out, options, threads):
    p = subprocess.run([binary, "compress", source, "-o", out, "--force", "--quiet", "--threads", str(threads)] + options,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        return "exit %d: %s" % (p.returncode, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "")
    with open(out, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", required=True)
    p.add_argument("--candidate", default=os.path.join(ROOT, ".build", "release", "compeft"))
    p.add_argument("--quick", action="store_true", help="fewer densities and modules")
    p.add_argument("--keep", help="write the inputs here instead of a temporary folder")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or tmp
        sources = inputs(folder, a.quick)
        runs = same = failures = 0
        for source in sources:
            for options in option_sets(a.quick):
                # Two threads where modules are transformed and measured in parallel (a rewritten gauge).
                parallel = "--lora-gauge" not in options or "auto" in options or "svd" in options
                for threads in ((1, 2) if parallel else (1,)):
                    base = compress(a.baseline, source, os.path.join(tmp, "base.cpeft"), options, threads)
                    cand = compress(a.candidate, source, os.path.join(tmp, "cand.cpeft"), options, threads)
                    runs += 1
                    if base == cand:
                        same += 1
                        failures += base.startswith("exit")
                    else:
                        print(f"DIFFERENT {os.path.relpath(source, folder)} {' '.join(options)} --threads {threads}: {base} vs {cand}", flush=True)
        print(f"{runs} compressions of {len(sources)} inputs: {same} identical sha256 ({failures} of them the same refusal), {runs - same} different")
        sys.exit(0 if same == runs else 1)


if __name__ == "__main__":
    main()
