#!/usr/bin/env python3
"""Serving benchmark: loading LoRA experts of a 7B-like shape from PEFT f16 safetensors and from .cpeft
containers, side by side in one run, with the page cache warm and cold.

    python3 Benchmarks/serving/serving.py [--experts 4] [--densities 5,10,20] [--rounds 5]
                                          [--svg docs/serving-benchmark.svg] [--json out.json]

Needs the compeft Python package (bash scripts/demo.sh installs it), torch, safetensors and peft.

Experts: LoRA r = 16 on q, k, v, o of 32 layers of width 4096 (PEFT names, `base_model.model.model.layers.
{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight`), 16.8 M parameters. A is drawn as PEFT initialises it
(Kaiming-uniform, ±1/√4096) plus a trained drift; B, zero at initialisation, as a trained B looks:
Laplace values whose scale varies log-normally from row to row, so magnitudes are heavy-tailed and
uneven, not iid Gaussian. Each expert is written as a PEFT folder (adapter_model.safetensors in F16,
adapter_config.json) and compressed with compeft at each density.

Per expert and format, in rounds that visit every (expert, format) once, in a shuffled order:
  - bytes: the file's size, and for cold loads the bytes the kernel read from storage (/proc/self/io
    read_bytes).
  - load → bf16 dict: time until a `dict[str, torch.Tensor]` in bfloat16 is ready:
      safetensors: safetensors.torch.load_file, then .to(torch.bfloat16) per tensor (also reported: the
                   load_file part alone, an f16 dict);
      compeft:     compeft.load_state_dict(path, dtype=torch.bfloat16) (decodes straight into bf16; one
                   thread unless --threads).
    warm: the file is in the page cache (read once before); cold: posix_fadvise(DONTNEED) on the file
    (after fsync) just before the load.
  - swap: replacing the weights of adapter "default" of a live PeftModel (bf16) with this expert's:
      safetensors: load_file + peft.set_peft_model_state_dict (what PeftModel.load_adapter does for an
                   adapter the model has);
      compeft:     compeft.load_peft(model, path, adapter_name="default", dtype=torch.bfloat16), which
                   decodes into the adapter's parameters in place.
    The model is 32 layers of q, k, v, o Linear(4096, 4096) (the layers share one set of base weights,
    which a swap never touches, so the machine can hold it); page cache warm.
  - decode rate: parameters per second of the warm compeft load (one core: torch.set_num_threads(1)).
Medians over the rounds are printed as a table (Markdown), with ratios against safetensors.
Memory: a child process loads all experts of one format and keeps them; its peak RSS above the
imports is compared with the experts' own size (N × 2 bytes × parameters in bf16).

Every load is checked: each compeft dict equals a reference decode, each swap leaves the model's
adapter weights equal to that dict, so nothing is timed that was not done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

LAYERS, WIDTH, RANK = 32, 4096, 16
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def tensor_names():
    for layer in range(LAYERS):
        for module in MODULES:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            yield f"{prefix}.lora_A.weight", (RANK, WIDTH)
            yield f"{prefix}.lora_B.weight", (WIDTH, RANK)


PARAMETERS = sum(a * b for _, (a, b) in tensor_names())


def make_expert(folder: str, seed: int) -> None:
    """A PEFT LoRA folder with realistic, non-zero factors, stored in F16."""
    from safetensors.torch import save_file

    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(WIDTH)
    tensors = {}
    for name, shape in tensor_names():
        if ".lora_A." in name:
            values = rng.uniform(-bound, bound, shape) + rng.laplace(0, 0.1 * bound, shape)
        else:
            row_scale = np.exp(rng.normal(np.log(2e-3), 0.75, (shape[0], 1)))
            values = rng.laplace(0, 1, shape) * row_scale
        tensors[name] = torch.from_numpy(values.astype(np.float16))
    os.makedirs(folder, exist_ok=True)
    save_file(tensors, os.path.join(folder, "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA", "task_type": None, "r": RANK, "lora_alpha": 2 * RANK, "lora_dropout": 0.0,
        "target_modules": list(MODULES), "bias": "none", "fan_in_fan_out": False, "base_model_name_or_path": None,
        "inference_mode": True, "init_lora_weights": True, "use_rslora": False, "use_dora": False,
    }
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_cache(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def storage_reads() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("read_bytes"))


class Layer(torch.nn.Module):
    def __init__(self, shared: dict):
        super().__init__()
        self.self_attn = torch.nn.Module()
        for module in MODULES:
            setattr(self.self_attn, module, shared[module])


class Stack(torch.nn.Module):
    """32 layers of q, k, v, o projections sharing one set of base weights (PEFT wraps each separately)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList()
        for _ in range(LAYERS):
            shared = {}
            for module in MODULES:
                linear = torch.nn.Linear(WIDTH, WIDTH, bias=False, dtype=torch.bfloat16, device="meta")
                shared[module] = linear
            self.model.layers.append(Layer(shared))
        base = {m: torch.nn.Parameter(torch.zeros(WIDTH, WIDTH, dtype=torch.bfloat16), requires_grad=False) for m in MODULES}
        for layer in self.model.layers:
            for module in MODULES:
                getattr(layer.self_attn, module).weight = base[module]


def live_model(first_expert: str):
    import compeft
    from peft import PeftModel  # noqa: F401

    return compeft.load_peft(Stack(), first_expert, adapter_name="default", dtype=torch.bfloat16,
                             autocast_adapter_dtype=False, device="cpu")


def timed(fn):
    """(wall seconds, this thread's CPU seconds, result). The CPU time is what one core spent, whatever
    else the machine runs; cold loads are judged by wall time (they wait for the disk)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = fn()
    return time.perf_counter() - wall, time.thread_time() - cpu, result


def rss() -> tuple[int, int]:
    """(current, peak) resident set size in bytes."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def memory_child(files: list[str], kind: str) -> None:
    """Loads every file and keeps the dicts; prints the RSS before, after, and its peak (bytes)."""
    import compeft
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    # Run the code either path runs once (the library's pages count in RSS) on one tensor, before the
    # baseline; a whole expert here would leave freed heap behind that the loads below reuse.
    if kind == "cpeft":
        with compeft.open(files[0]) as c:
            c.decode(next(iter(c.tensors)), dtype=torch.bfloat16)
    else:
        from safetensors import safe_open

        with safe_open(files[0], framework="pt") as f:
            f.get_tensor(next(iter(f.keys()))).to(torch.bfloat16)
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
        f.write("5")
    base, _ = rss()
    kept = []
    for path in files:
        if kind == "safetensors":
            kept.append({k: v.to(torch.bfloat16) for k, v in load_file(path).items()})
        else:
            kept.append(compeft.load_state_dict(path, dtype=torch.bfloat16))
    after, peak = rss()
    print(json.dumps({"base": base, "after": after, "peak": peak, "experts": len(kept)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--densities", default="5,10,20")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="compeft.load_state_dict threads")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--svg", default=None, help="write the cold/warm load chart here")
    parser.add_argument("--json", default=None, help="write every measurement here")
    parser.add_argument("--memory-child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[1:], args.memory_child[0])
        return 0

    import compeft
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    densities = [float(d) for d in args.densities.split(",")]
    work = args.workdir or tempfile.mkdtemp(prefix="compeft-serving-")
    print(f"compeft {compeft.__version__}, torch {torch.__version__}; {args.experts} experts of {PARAMETERS:,} parameters "
          f"(LoRA r={RANK} on q,k,v,o of {LAYERS} layers × {WIDTH}); work folder {work}", flush=True)

    formats = ["safetensors"] + [f"cpeft {d:g}%" for d in densities]
    files: dict[tuple[int, str], str] = {}
    for e in range(args.experts):
        folder = os.path.join(work, f"expert-{e}")
        if not os.path.exists(os.path.join(folder, "adapter_model.safetensors")):
            make_expert(folder, seed=1000 + e)
        files[(e, "safetensors")] = os.path.join(folder, "adapter_model.safetensors")
        for d in densities:
            out = os.path.join(work, f"expert-{e}-{d:g}.cpeft")
            if not os.path.exists(out):
                compeft.compress(folder, out, density=d)
            files[(e, f"cpeft {d:g}%")] = out
    os.sync()

    reference = {key: compeft.load_state_dict(path, dtype=torch.bfloat16)
                 for key, path in files.items() if key[1] != "safetensors"}
    model = live_model(files[(0, "cpeft 10%" if 10.0 in densities else formats[1])])
    from peft.utils import get_peft_model_state_dict

    def load(fmt: str, path: str):
        if fmt == "safetensors":
            return {k: v.to(torch.bfloat16) for k, v in load_file(path).items()}
        return compeft.load_state_dict(path, dtype=torch.bfloat16, threads=args.threads)

    def swap(fmt: str, path: str):
        if fmt == "safetensors":
            set_peft_model_state_dict(model, load_file(path), adapter_name="default")
        else:
            compeft.load_peft(model, path, adapter_name="default", dtype=torch.bfloat16, autocast_adapter_dtype=False)

    keys = ["cold", "warm", "warm_cpu", "cold_f16", "warm_f16", "swap", "swap_cpu", "read"]
    results: dict[str, dict[str, list[float]]] = {f: {k: [] for k in keys} for f in formats}
    rng = random.Random(0)
    for r in range(args.rounds):
        order = list(files)
        rng.shuffle(order)
        for key in order:
            e, fmt = key
            path = files[key]
            # cold
            drop_cache(path)
            before = storage_reads()
            seconds, _, state = timed(lambda: load(fmt, path))
            results[fmt]["read"].append(storage_reads() - before)
            results[fmt]["cold"].append(seconds)
            if fmt != "safetensors":
                assert all(torch.equal(state[k], reference[key][k]) for k in state), f"{path}: decode differs"
            # warm
            warm_cache(path)
            del state
            wall, cpu, _ = timed(lambda: load(fmt, path))
            results[fmt]["warm"].append(wall)
            results[fmt]["warm_cpu"].append(cpu)
            if fmt == "safetensors":
                drop_cache(path)
                results[fmt]["cold_f16"].append(timed(lambda: load_file(path))[0])
                results[fmt]["warm_f16"].append(timed(lambda: load_file(path))[0])
            # swap (warm)
            wall, cpu, _ = timed(lambda: swap(fmt, path))
            results[fmt]["swap"].append(wall)
            results[fmt]["swap_cpu"].append(cpu)
            if fmt != "safetensors":
                live = get_peft_model_state_dict(model, adapter_name="default")
                assert all(torch.equal(live[k], reference[key][k]) for k in live), f"{path}: swap differs"
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    # The decoder alone through Python: every tensor into bf16 buffers allocated (and touched) once, one
    # thread, best of the rounds in CPU time.
    decode_cpu = {}
    for f in formats[1:]:
        with compeft.open(files[(0, f)]) as c:
            buffers = {n: torch.zeros(i.shape, dtype=torch.bfloat16) for n, i in c.tensors.items()}

            def decode_all():
                for n, buffer in buffers.items():
                    c.decode(n, out=buffer)

            decode_cpu[f] = min(timed(decode_all)[1] for _ in range(args.rounds))
            assert all(torch.equal(buffers[n], reference[(0, f)][n]) for n in buffers)

    memory = {}
    for fmt in ("safetensors", formats[2] if len(formats) > 2 else formats[1]):
        paths = [files[(e, fmt)] for e in range(args.experts)]
        child = subprocess.run([sys.executable, __file__, "--memory-child", fmt.split()[0], *paths],
                               capture_output=True, text=True, check=True)
        memory[fmt] = json.loads(child.stdout.strip().splitlines()[-1])

    med = {f: {k: statistics.median(v) for k, v in m.items() if v} for f, m in results.items()}
    size = {f: statistics.median(os.path.getsize(files[(e, f)]) for e in range(args.experts)) for f in formats}
    base = med["safetensors"]
    mb = 1e6
    print()
    print("| format | file (MB) | read cold (MB) | cold load → bf16 (ms) | warm load → bf16 (ms) | warm, CPU (ms) "
          "| swap (ms) | swap, CPU (ms) | params/s, warm load CPU | params/s, swap CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for f in formats:
        m = med[f]
        ratio = lambda key: "" if f == "safetensors" else f" ({base[key] / m[key]:.1f}×)"
        print(f"| {f} | {size[f] / mb:.2f} | {m['read'] / mb:.2f} | {m['cold'] * 1e3:.1f}{ratio('cold')} | "
              f"{m['warm'] * 1e3:.1f}{ratio('warm')} | {m['warm_cpu'] * 1e3:.1f}{ratio('warm_cpu')} | "
              f"{m['swap'] * 1e3:.1f}{ratio('swap')} | {m['swap_cpu'] * 1e3:.1f}{ratio('swap_cpu')} | "
              f"{PARAMETERS / m['warm_cpu']:.3g} | {PARAMETERS / m['swap_cpu']:.3g} |")
    print(f"| safetensors, load_file only (f16 dict) | {size['safetensors'] / mb:.2f} | | {base['cold_f16'] * 1e3:.1f} | "
          f"{base['warm_f16'] * 1e3:.1f} | | | | | |")
    print()
    print("| format | decode into reused bf16 buffers, CPU (ms) | params/s |")
    print("|---|---:|---:|")
    for f, seconds in decode_cpu.items():
        print(f"| {f} | {seconds * 1e3:.1f} | {PARAMETERS / seconds:.3g} |")
    print()
    expert_bytes = 2 * PARAMETERS
    for fmt, m in memory.items():
        kept, grown, peak = m["experts"] * expert_bytes, m["after"] - m["base"], m["peak"] - m["base"]
        print(f"memory, {fmt}: {m['experts']} experts kept in bf16 = {kept / mb:.0f} MB; RSS grew {grown / mb:.0f} MB "
              f"({grown / kept:.2f}× the experts), peak {peak / mb:.0f} MB ({peak / kept:.2f}×)")
    print(f"\nmedians of {args.rounds} rounds; ratios are safetensors' time / this format's time; torch threads 1, "
          f"compeft threads {args.threads}")

    if args.svg:
        write_svg(args.svg, formats, med)
        print(f"wrote {args.svg}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "sizes": size, "memory": memory, "parameters": PARAMETERS}, f, indent=1)
    return 0


def write_svg(path: str, formats: list[str], med: dict) -> None:
    """Grouped bars: cold and warm load → bf16 and swap, in ms, per format."""
    series = [("cold load", "cold", "#1f4e79"), ("warm load", "warm", "#6fa8dc"), ("swap (warm)", "swap", "#e69138")]
    width, height, left, bottom, top = 760, 360, 70, 60, 40
    plot_w, plot_h = width - left - 20, height - bottom - top
    peak = max(med[f][k] for f in formats for _, k, _ in series) * 1e3
    step = 10 ** int(np.floor(np.log10(peak)))
    ticks = [t * step for t in range(0, int(peak / step) + 2)]
    top_value = ticks[-1]
    group = plot_w / len(formats)
    bar = group / (len(series) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">Loading one 16.8 M-parameter LoRA expert into bf16 '
             f'(ms, median; lower is better)</text>']
    for t in ticks:
        y = top + plot_h - plot_h * t / top_value
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
    for i, f in enumerate(formats):
        x0 = left + i * group + bar / 2
        for j, (_, key, color) in enumerate(series):
            value = med[f][key] * 1e3
            h = plot_h * value / top_value
            x = x0 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" fill="{color}"/>')
            parts.append(f'<text x="{x + bar * 0.45:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" font-size="10">{value:.0f}</text>')
        parts.append(f'<text x="{left + i * group + group / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{f}</text>')
    for j, (label, _, color) in enumerate(series):
        x = left + 10 + j * 140
        parts.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 18}" y="{height - 12}">{label}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    sys.exit(main())
