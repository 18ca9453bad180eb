#!/usr/bin/env python3
"""What the LoRA default rule (SVD gauge chosen by product error, one scale per module) costs in `compress`
time, against the paper's rule (`--scope global --scale global --lora-gauge trained`) in the same build, on
a PEFT LoRA adapter of a 7B shape: r on q,k,v,o of 32 layers of width 4096 (r = 96 is 1.0·10⁸ values).

    python3 Benchmarks/lora_rule_speed.py [--ranks 16,96] [--density 10] [--threads 1] [--repeat 3]
                                          [--compeft .build/release/compeft]

The factors are seeded Gaussians with a decaying spectrum in B (the product of a trained adapter has a few
large directions). Each round runs both rules once, interleaved; the best of --repeat rounds is printed, with
the ratio and both container sizes.
"""
import argparse, json, os, subprocess, tempfile, time
import numpy as np
from safetensors.numpy import save_file


def write_adapter(folder, rank, layers=32, width=4096, seed=0):
    rng = np.random.default_rng(seed)
    tensors = {}
    decay = (0.8 ** np.arange(rank)).astype(np.float32)
    for layer in range(layers):
        for module in ("q_proj", "k_proj", "v_proj", "o_proj"):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((rank, width)) / np.sqrt(width)).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((width, rank)) * 0.01 * decay).astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
              "base_model_name_or_path": "synthetic-7b", "task_type": "CAUSAL_LM", "bias": "none", "lora_dropout": 0.0}
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(config, f)
    return sum(t.size for t in tensors.values())


def run(binary, folder, out, density, threads, extra):
    start = time.perf_counter()
    subprocess.run([binary, "compress", folder, "-o", out, "--density", str(density), "--threads", str(threads), "--force"] + extra,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, os.path.getsize(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ranks", default="16,96")
    p.add_argument("--density", type=float, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--compeft", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "compeft"))
    a = p.parse_args()
    rules = {"paper rule": ["--scope", "global", "--scale", "global", "--lora-gauge", "trained"], "default": []}
    print(f"| r | values | paper rule s | default s | default ÷ paper | paper bytes | default bytes |")
    print(f"|--:|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory() as tmp:
        for rank in (int(r) for r in a.ranks.split(",")):
            folder = os.path.join(tmp, f"r{rank}")
            values = write_adapter(folder, rank)
            best = {name: (float("inf"), 0) for name in rules}
            for _ in range(a.repeat):
                for name, extra in rules.items():
                    t, size = run(a.compeft, folder, os.path.join(tmp, f"{name.replace(' ', '-')}.cpeft"), a.density, a.threads, extra)
                    best[name] = min(best[name], (t, size))
            (tp, bp), (td, bd) = best["paper rule"], best["default"]
            print(f"| {rank} | {values:,} | {tp:.2f} | {td:.2f} | {td / tp:.2f}× | {bp:,} | {bd:,} |", flush=True)


if __name__ == "__main__":
    main()
