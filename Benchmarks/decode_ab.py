#!/usr/bin/env python3
"""The serving decode of two builds side by side: `CoderBenchmark --decode-container` (every float tensor of each
container into bf16 through ContainerReader.decode, one thread, CPU time, best of --rounds) run alternately from a
baseline binary and a candidate binary, best of --repeat runs each, with the ratio per container and per payload
encoding (1 ternary-bitmap, 3 ternary-gap).

    python3 Benchmarks/decode_ab.py BASELINE_BIN CANDIDATE_BIN CONTAINER... [--repeat 5] [--rounds 5]

BASELINE_BIN is typically another checkout's `swift build -c release --package-path Benchmarks --product
CoderBenchmark` binary (e.g. a `git worktree` of main), so both run in the same session under the same load.
"""

import argparse
import json
import os
import subprocess


def run(binary, containers, rounds):
    out = subprocess.run([binary, "--decode-container", *containers, "--rounds", str(rounds)], capture_output=True,
                         text=True, check=True).stdout
    return {r["path"]: r for r in (json.loads(line) for line in out.splitlines() if line.startswith("{"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline")
    parser.add_argument("candidate")
    parser.add_argument("containers", nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best = {}
    for _ in range(args.repeat):
        for name, binary in (("baseline", args.baseline), ("candidate", args.candidate)):
            for path, r in run(binary, args.containers, args.rounds).items():
                key = (name, path)
                cur = best.setdefault(key, {"params": r["params"], "seconds": r["seconds"], "encodings": r["encodings"]})
                cur["seconds"] = min(cur["seconds"], r["seconds"])
                for e, v in r["encodings"].items():
                    cur["encodings"][e]["seconds"] = min(cur["encodings"][e]["seconds"], v["seconds"])
    print("| container | baseline ms | params/s | candidate ms | params/s | × | encoding: baseline → candidate ms (×) |")
    print("|---|--:|--:|--:|--:|--:|---|")
    for path in args.containers:
        b, c = best[("baseline", path)], best[("candidate", path)]
        parts = []
        for e in sorted(b["encodings"]):
            be, ce = b["encodings"][e], c["encodings"][e]
            parts.append(f"{e} ({be['tensors']} tensors, {be['nonzero'] / be['values']:.1%} kept): "
                         f"{be['seconds'] * 1e3:.2f} → {ce['seconds'] * 1e3:.2f} ({be['seconds'] / ce['seconds']:.2f})")
        print(f"| {os.path.basename(path)} | {b['seconds'] * 1e3:.2f} | {b['params'] / b['seconds']:.3g} | "
              f"{c['seconds'] * 1e3:.2f} | {c['params'] / c['seconds']:.3g} | {b['seconds'] / c['seconds']:.2f} | {'; '.join(parts)} |")


if __name__ == "__main__":
    main()
