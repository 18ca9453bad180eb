#!/usr/bin/env python3
"""What each tensor costs: time and peak memory per tensor of every command, at 10^4 to 10^6 tensors.

    python3 Benchmarks/per_tensor.py [--counts 10000,100000,1000000] [--compeft BIN] [--lib DIR]
                                     [--commands compress,decompress,...] [--repeats 1] [--keep DIR]

For each count N, two residual files are written with numpy into a temporary folder (seed 0, f32, values
N(0, 0.01)):

- **many**: N tensors of one value each (`layers.<i>.w`, shape [1]);
- **one**: the same N values as one tensor (shape [N]), the baseline: the same values, the same work on
  them, only the count of tensors differs.

Every command then runs on both, in this process's children, one at a time, and its wall time, CPU time
(user + system) and peak RSS are read with /usr/bin/time:

    compress   IN.safetensors -o X.cpeft --density 20
    decompress X.cpeft -o X.out.safetensors
    inspect    X.cpeft            (the table, to /dev/null)
    inspect    X.cpeft --json     (to /dev/null)
    verify     X.cpeft
    merge      IN.safetensors IN.safetensors -o X.merged.safetensors   (task arithmetic)
    merge-cpeft X.cpeft X.cpeft -o X.merged.cpeft                      (from compressed experts)
    open       the C ABI: compeft_open, compeft_tensor_count, compeft_tensor_info of every tensor,
               compeft_close (a small C program built here against .build/release/libCompeftC.so)

and the per-tensor overhead is (many − one) / N: µs of wall time, µs of CPU time (all threads) and bytes of
peak RSS per tensor. The
targets (issue 16) are 20 µs and 1 KiB per tensor, i.e. 10^6 one-value tensors in 20 s and 1 GiB.

Release builds: `swift build -c release --product compeft && swift build -c release --product CompeftC`.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

OPEN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "compeft.h"
/* Opens a container through the C ABI and reads every tensor's description: what a server does at load. */
int main(int argc, char **argv) {
    compeft_handle h;
    if (compeft_open(argv[1], &h) != COMPEFT_OK) { fprintf(stderr, "%s\n", compeft_last_error()); return 1; }
    size_t n = 0;
    if (compeft_tensor_count(h, &n) != COMPEFT_OK) { fprintf(stderr, "%s\n", compeft_last_error()); return 1; }
    size_t values = 0;
    for (size_t i = 0; i < n; i++) {
        compeft_tensor_desc d;
        if (compeft_tensor_info(h, i, &d) != COMPEFT_OK) { fprintf(stderr, "%s\n", compeft_last_error()); return 1; }
        values += (size_t)d.count;
    }
    compeft_close(h);
    printf("%zu tensors, %zu values\n", n, values);
    return 0;
}
"""

COMMANDS = ["compress", "decompress", "inspect", "inspect-json", "verify", "merge", "merge-cpeft", "open"]


def write_safetensors(path, tensors):
    """Writes `tensors` (name, numpy f32 array) as safetensors, header by hand (the library is slow at 10^6)."""
    header = {}
    offset = 0
    for name, array in tensors:
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, array in tensors:
            f.write(array.tobytes())


def make_inputs(folder, count):
    import numpy as np

    values = np.random.default_rng(0).normal(0, 0.01, count).astype("<f4")
    many = os.path.join(folder, "many.safetensors")
    one = os.path.join(folder, "one.safetensors")
    # One-value tensors: the data section is the values in order, so write the header and the block at once.
    header = {f"layers.{i}.w": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(many, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(values.tobytes())
    write_safetensors(one, [("layers.w", values)])
    return many, one


def run(argv, stdout=subprocess.DEVNULL):
    """Runs argv under /usr/bin/time; returns (wall s, cpu s, peak RSS bytes).

    /usr/bin/time, not this process's wait4: Linux keeps a child's peak RSS across exec, so a child forked
    from this Python (numpy loaded) would start from this process's size.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        process = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", report.name] + argv,
                                 stdout=stdout, stderr=subprocess.PIPE)
        if process.returncode != 0:
            sys.exit(f"{' '.join(argv)}: exit {process.returncode}\n{process.stderr.decode(errors='replace')}")
        wall, user, system, peak = report.read().split()[-4:]
    return float(wall), float(user) + float(system), int(peak) * 1024


def command_line(binary, opener, name, source, stem):
    c = f"{stem}.cpeft"
    return {
        "compress": [binary, "compress", source, "-o", c, "--density", "20", "--force", "--quiet"],
        "decompress": [binary, "decompress", c, "-o", f"{stem}.out.safetensors", "--force", "--quiet"],
        "inspect": [binary, "inspect", c],
        "inspect-json": [binary, "inspect", c, "--json"],
        "verify": [binary, "verify", c],
        "merge": [binary, "merge", source, source, "-o", f"{stem}.merged.safetensors", "--force", "--quiet"],
        "merge-cpeft": [binary, "merge", c, c, "-o", f"{stem}.merged.cpeft", "--force", "--quiet"],
        "open": [opener, c],
    }[name]


def build_opener(folder, lib):
    source = os.path.join(folder, "open.c")
    with open(source, "w") as f:
        f.write(OPEN_C)
    binary = os.path.join(folder, "open")
    subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "include"), source, "-o", binary, "-L", lib,
                    "-lCompeftC", f"-Wl,-rpath,{lib}"], check=True)
    return binary


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="10000,100000,1000000")
    parser.add_argument("--compeft", default=os.path.join(ROOT, ".build", "release", "compeft"))
    parser.add_argument("--lib", default=os.path.join(ROOT, ".build", "release"))
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--repeats", type=int, default=1, help="runs of each command; the one with the least CPU time is kept")
    parser.add_argument("--keep", help="write the inputs and outputs here and keep them")
    args = parser.parse_args()
    commands = args.commands.split(",")
    for c in commands:
        if c not in COMMANDS:
            sys.exit(f"unknown command {c!r}; one of {', '.join(COMMANDS)}")
    if not os.path.exists(args.compeft):
        sys.exit(f"{args.compeft} not found: swift build -c release --product compeft")
    folder = args.keep or tempfile.mkdtemp(prefix="compeft-per-tensor-")
    os.makedirs(folder, exist_ok=True)
    try:
        opener = None
        if "open" in commands:
            if not os.path.exists(os.path.join(args.lib, "libCompeftC.so")):
                sys.exit(f"{args.lib}/libCompeftC.so not found: swift build -c release --product CompeftC")
            opener = build_opener(folder, args.lib)
        print("| tensors | command | one tensor: wall s | CPU s | peak RSS | N tensors: wall s | CPU s | peak RSS "
              "| µs / tensor (wall) | µs / tensor (CPU) | bytes / tensor |")
        print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for count in (int(c) for c in args.counts.split(",")):
            many, one = make_inputs(folder, count)
            for name in commands:
                results = {}
                for label, source in (("one", one), ("many", many)):
                    argv = command_line(args.compeft, opener, name, source, os.path.join(folder, label))
                    best = min((run(argv) for _ in range(args.repeats)), key=lambda r: r[1])
                    results[label] = best
                (w1, c1, r1), (wn, cn, rn) = results["one"], results["many"]
                print(f"| {count} | {name} | {w1:.2f} | {c1:.2f} | {human(r1)} | {wn:.2f} | {cn:.2f} | {human(rn)} "
                      f"| {(wn - w1) / count * 1e6:.1f} | {(cn - c1) / count * 1e6:.1f} | {(rn - r1) / count:.0f} |",
                      flush=True)
            for stem in ("one", "many"):
                for suffix in (".cpeft", ".out.safetensors", ".merged.safetensors", ".merged.cpeft"):
                    path = os.path.join(folder, stem + suffix)
                    if os.path.exists(path) and not args.keep:
                        os.remove(path)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
