#!/usr/bin/env python3
"""What a container spends besides its tensor payloads, and what each index field costs.

    python3 Benchmarks/container_overhead.py [--compeft BIN] [--baseline BIN] [--density 10]
                                             [--iid-size 2000000] [--densities 1,2,5,10,20,30,50]

Three tables, each for `--compeft` (default .build/release/compeft, else .build/debug/compeft) and, when
given, a `--baseline` binary (an older compeft, e.g. one that writes format 1.0), both in this run:

1. The PEFT fixtures (Fixtures/files/{lora,ia3}-*) compressed at `--density`: file bytes, tensor payloads,
   and the rest — preamble, trailer, index, and the stored `adapter_config.json` (format 1.0: its own
   zstd frame; 1.1: inside the index) — per tensor. "index+header w/o config" removes the config: for 1.0
   its frame, for 1.1 the index re-stored without the config's bytes (the writer's codec choice). With
   torch, transformers and peft installed, two larger LoRA adapters follow, made here by peft on a
   32-layer Llama-architecture model (hidden size 64, every LoRA factor filled with N(0, 1) values, torch
   seed 0): r 8 on q_proj, v_proj (128 tensors) and on all seven projections (448 tensors).
2. A residual file of `--iid-size` iid Gaussian values (one f32 tensor, numpy seed 0) compressed at each of
   `--densities`: the whole file against the iid information bound d·H(n/d) + n bits (n = kept non-zero
   values, read from the index).
3. Format 1.1 only, the fixtures of table 1: what each field costs, as the stored index size with the
   field removed or written another way (the same codec choice as the writer: the smallest of no codec,
   zstd -19, zstd -19 with dictionary 1), against the index as written.

Containers are read with Fixtures/decode_gap.py, the independent reader; zstd -19 runs through the `zstd`
command. Needs numpy and safetensors for table 2.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "Fixtures"))
import decode_gap  # noqa: E402

FIXTURES = ["lora-bert-seqcls", "ia3-bert-seqcls", "lora-gpt2-bf16", "ia3-gpt2-f16"]


def default_binary():
    for build in ("release", "debug"):
        path = os.path.join(ROOT, ".build", build, "compeft")
        if os.path.exists(path):
            return path
    sys.exit("build compeft first (swift build -c release --product compeft)")


def compress(binary, source, out, density):
    subprocess.run([binary, "compress", source, "-o", out, "--density", str(density), "--force", "--quiet"], check=True)


def zstd19(data, dictionary=None):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        path = f.name
    try:
        command = ["zstd", "-19", "-q", "-c", "--no-check"] + (["-D", dictionary] if dictionary else []) + [path]
        return len(subprocess.run(command, capture_output=True, check=True).stdout)
    finally:
        os.unlink(path)


def stored_size(body):
    """The stored index for a body, as the writer chooses its codec: codec byte + the smallest form."""
    return 1 + min(len(body), zstd19(body), zstd19(body, decode_gap.DICTIONARY_1))


def layout(path):
    """Sizes of a container's parts: file, tensor count, tensor payloads, preamble + trailer, stored index,
    the index without the stored config; for 1.1 also the body, its field spans and the parsed index."""
    spans = []
    data, index = decode_gap.read_index(path, spans)
    tensors = index["tensors"]
    payload = sum(t["length"] for t in tensors)
    if index["version"] == "1.0":
        # The config is a payload of its own; the index is the frame the trailer points at.
        length = int.from_bytes(data[-40:-32], "little")
        return dict(size=len(data), tensors=len(tensors), payload=payload, header=16 + 48, index=length,
                    index_without_config=length)
    body = index["body"]
    without = body
    for kind, start, end in sorted(spans, key=lambda s: -s[1]):
        if kind == "inline file":
            without = without[:start] + without[end:]
    return dict(size=len(data), tensors=len(tensors), payload=payload, header=12 + 20, index=index["indexBytes"],
                index_without_config=stored_size(without), body=body, spans=spans, parsed=index)


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def variants(info):
    """Body variants of a 1.1 index: (label, body)."""
    body, spans, parsed = info["body"], info["spans"], info["parsed"]
    tensors = parsed["tensors"]

    def edit(kinds, replace):
        out = bytearray()
        pos = 0
        counter = {}
        for kind, start, end in sorted(spans, key=lambda s: s[1]):
            if kind not in kinds:
                continue
            i = counter.get(kind, 0)
            counter[kind] = i + 1
            out += body[pos:start]
            out += replace(kind, i, body[start:end])
            pos = end
        return bytes(out + body[pos:])

    rng = __import__("random").Random(1)
    ternary = {i for i, t in enumerate(tensors) if t["encoding"] in (1, 3)}
    scale = parsed["compression"].get("scaleBits", 0).to_bytes(4, "little")
    full_names = []
    for t in tensors:
        name = t["name"].encode()
        full_names.append(uvarint(0) + uvarint(len(name)) + name)
    return [
        ("as written", body),
        ("no per-payload checksum", edit({"checksum"}, lambda k, i, b: b"")),
        ("64-bit checksums", edit({"checksum"}, lambda k, i, b: b + rng.randbytes(4))),
        ("explicit offsets (uvarint)", edit({"length"}, lambda k, i, b: b + uvarint(tensors[i]["offset"]))),
        ("scale per ternary tensor (f32)", edit({"checksum"}, lambda k, i, b: b + (scale if i in ternary else b""))),
        ("count per tensor (uvarint)", edit({"shape"}, lambda k, i, b: b + uvarint(tensors[i]["count"]))),
        ("names not front-coded", edit({"name"}, lambda k, i, b: full_names[i])),
        ("no group statistics (threshold, σ)", edit({"group statistics"}, lambda k, i, b: b[-4:])),
    ]


def llama_loras(work):
    """Two real peft LoRA folders on a 32-layer Llama-architecture model, or [] without peft."""
    try:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        return []
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=32, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=128)
    out = []
    for name, modules in [("llama-lora-qv", ["q_proj", "v_proj"]),
                          ("llama-lora-all", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])]:
        model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=8, lora_alpha=16, target_modules=modules,
                                                                     task_type="CAUSAL_LM"))
        with torch.no_grad():
            # Trained factors, not PEFT's initialisation (B = 0): every factor gets N(0, 1) values.
            for parameter_name, parameter in model.named_parameters():
                if "lora_" in parameter_name:
                    parameter.normal_()
        path = os.path.join(work, name)
        model.save_pretrained(path)
        out.append((name, path))
    return out


def table_fixtures(binaries, density, work):
    print(f"\n## PEFT fixtures at density {density} %\n")
    print("| compeft | fixture | tensors | file B | tensor payloads B | index + config + header B | per tensor |"
          " index + header w/o config B | per tensor |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    infos = {}
    sources = [(name, os.path.join(ROOT, "Fixtures", "files", name)) for name in FIXTURES] + llama_loras(work)
    for label, binary in binaries:
        for name, source in sources:
            out = os.path.join(work, f"{label}-{name}.cpeft")
            compress(binary, source, out, density)
            info = layout(out)
            infos[(label, name)] = info
            rest = info["size"] - info["payload"]
            bare = info["header"] + info["index_without_config"]
            n = info["tensors"]
            print(f"| {label} | {name} | {n} | {info['size']} | {info['payload']} | {rest} | {rest / n:.1f} | {bare} | {bare / n:.1f} |")
    return infos


def table_iid(binaries, size, densities, work):
    import numpy as np
    from safetensors.numpy import save_file

    source = os.path.join(work, "iid.safetensors")
    save_file({"w": np.random.default_rng(0).standard_normal(size).astype(np.float32)}, source)
    print(f"\n## {size} iid Gaussian values (one f32 tensor), whole file against d·H(n/d) + n bits\n")
    print("| compeft | density % | n | bound B | file B | × bound |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, binary in binaries:
        for density in densities:
            out = os.path.join(work, f"{label}-iid-{density}.cpeft")
            compress(binary, source, out, density)
            _, index = decode_gap.read_index(out)
            n = sum(t["nonzero"] for t in index["tensors"])
            p = n / size
            bits = size * (-p * math.log2(p) - (1 - p) * math.log2(1 - p)) + n if 0 < p < 1 else n
            bound = bits / 8
            file_bytes = os.path.getsize(out)
            print(f"| {label} | {density} | {n} | {bound:.0f} | {file_bytes} | {file_bytes / bound:.4f} |")


def table_fields(infos, label):
    print("\n## What each format 1.1 index field costs (stored index bytes; Δ against the index as written)\n")
    names = [name for (l, name) in infos if l == label and "body" in infos[(l, name)] and name in FIXTURES]
    if not names:
        print("(no format 1.1 containers)")
        return
    print("| variant | " + " | ".join(f"{n} ({infos[(label, n)]['tensors']} tensors)" for n in names) + " |")
    print("|---|" + "--:|" * len(names))
    rows = {}
    for n in names:
        for variant, body in variants(infos[(label, n)]):
            rows.setdefault(variant, []).append(stored_size(body))
    base = rows["as written"]
    for variant, sizes in rows.items():
        cells = [f"{s}" if variant == "as written" else f"{s} ({s - b:+d})" for s, b in zip(sizes, base)]
        print(f"| {variant} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compeft", default=None)
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--density", type=float, default=10)
    ap.add_argument("--iid-size", type=int, default=2_000_000)
    ap.add_argument("--densities", default="1,2,5,10,20,30,50")
    args = ap.parse_args()
    binaries = ([("baseline", args.baseline)] if args.baseline else []) + [("compeft", args.compeft or default_binary())]
    with tempfile.TemporaryDirectory() as work:
        infos = table_fixtures(binaries, args.density, work)
        table_iid(binaries, args.iid_size, [float(d) for d in args.densities.split(",")], work)
        table_fields(infos, "compeft")


if __name__ == "__main__":
    main()
