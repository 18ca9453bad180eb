#!/usr/bin/env python3
"""Writes a synthetic full fine-tune larger than this machine's memory, sharded like a real checkpoint.

    python3 scripts/make_large_task_vector.py OUT_DIR [--tensors 30] [--side 16384]

OUT_DIR/base and OUT_DIR/finetuned each get bf16 shards (two 16384x16384 tensors per shard, 1 GiB
each) and a model.safetensors.index.json. With the defaults: 30 tensors = 8.05e9 parameters, 16 GiB
per model, so the f32 residual (32 GiB) and the two inputs (32 GiB) are both larger than 24 GiB of RAM.
The fine-tune is base + Laplace noise, computed in f32 and rounded to bf16. Needs only numpy.
"""
import argparse, json, os, struct
import numpy as np


def to_bf16(x):
    bits = x.astype(np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even (no NaN here)
    return (rounded >> 16).astype(np.uint16)


def write_shard(path, tensors):
    header, offset = {}, 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, _, data in tensors:
            data.tofile(f)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tensors", type=int, default=30)
    ap.add_argument("--side", type=int, default=16384)
    args = ap.parse_args()
    per_shard = 2
    shards = (args.tensors + per_shard - 1) // per_shard
    rng = np.random.default_rng(2311)
    for model in ("base", "finetuned"):
        os.makedirs(os.path.join(args.out, model), exist_ok=True)
    maps = {"base": {}, "finetuned": {}}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        base_t, ft_t = [], []
        for j in range(per_shard):
            i = s * per_shard + j
            if i >= args.tensors:
                break
            tname = f"model.layers.{i}.mlp.weight"
            shape = (args.side, args.side)
            w = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            b16 = to_bf16(w)
            w = (b16.astype(np.uint32) << 16).view(np.float32)
            noise = rng.laplace(0.0, 0.002, size=shape).astype(np.float32)
            base_t.append((tname, shape, b16))
            ft_t.append((tname, shape, to_bf16(w + noise)))
            for m in maps:
                maps[m][tname] = name
        for model, ts in (("base", base_t), ("finetuned", ft_t)):
            path = os.path.join(args.out, model, name)
            if not os.path.exists(path):
                write_shard(path, ts)
        print(f"shard {s + 1}/{shards} written", flush=True)
    for model in maps:
        total = sum(args.side * args.side * 2 for _ in maps[model])
        with open(os.path.join(args.out, model, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": maps[model]}, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
