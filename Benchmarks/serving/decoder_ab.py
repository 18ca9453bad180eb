#!/usr/bin/env python3
"""The decoder-only measurement of serving.py for two or more builds of libcompeft.so, side by side in one run:
`Container.decode(name, out=tensor)` on every tensor of each container into bf16 buffers allocated once, one thread,
CPU time (time.thread_time), best of --rounds; each library in its own child process (COMPEFT_LIBRARY), the children
alternating, best of --repeat children each; the last column is the first library's time over the last one's.

    python3 Benchmarks/serving/decoder_ab.py NAME=LIB.so[,NAME=LIB.so...] CONTAINER... [--rounds 5] [--repeat 3]

Needs the compeft package (any build: the library it loads is the one named) and torch.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def child(rounds, paths):
    import compeft
    import torch

    torch.set_num_threads(1)
    out = {}
    for path in paths:
        with compeft.open(path) as c:
            buffers = {n: torch.zeros(i.shape, dtype=torch.bfloat16) for n, i in c.tensors.items()}
            best = float("inf")
            for _ in range(rounds):
                start = time.thread_time()
                for n, b in buffers.items():
                    c.decode(n, out=b)
                best = min(best, time.thread_time() - start)
            out[path] = {"seconds": best, "params": sum(b.numel() for b in buffers.values())}
    print(json.dumps(out))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(int(sys.argv[2]), sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("libraries", help="NAME=path/to/libcompeft.so, comma-separated")
    parser.add_argument("containers", nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    libraries = dict(item.split("=", 1) for item in args.libraries.split(","))
    best, params = {}, {}
    for _ in range(args.repeat):
        for name, library in libraries.items():
            result = subprocess.run([sys.executable, __file__, "--child", str(args.rounds), *args.containers],
                                    env={**os.environ, "COMPEFT_LIBRARY": library}, capture_output=True, text=True,
                                    check=True)
            for path, r in json.loads(result.stdout.strip().splitlines()[-1]).items():
                best[(name, path)] = min(best.get((name, path), float("inf")), r["seconds"])
                params[path] = r["params"]
    names = list(libraries)
    print("| container | " + " | ".join(f"{n} CPU (ms) | {n} params/s" for n in names) + f" | {names[0]} / {names[-1]} |")
    print("|---|" + "---:|---:|" * len(names) + "---:|")
    for path in args.containers:
        cells = " | ".join(f"{best[(n, path)] * 1e3:.1f} | {params[path] / best[(n, path)]:.3g}" for n in names)
        print(f"| {os.path.basename(path)} | {cells} | {best[(names[0], path)] / best[(names[-1], path)]:.2f} |")


if __name__ == "__main__":
    main()
