#!/usr/bin/env python3
"""End-to-end compress throughput: `compeft compress` (release build) against a NumPy implementation of
the reference algorithm, on the same safetensors input, in the same run.

    python3 Benchmarks/compress_vs_numpy.py [--sizes 1e6,1e7,1e8] [--density 10] [--threads 1,2] [--repeat 3]
                                            [--compeft BINARY,BINARY…] [--no-decompress]

For each size it writes a residual file of Laplace values in 4 tensors (f32), then times
  numpy:   load with safetensors, concatenate sorted by name, sigma (float64, ddof=1), the threshold with
           np.partition (the m-th smallest |x|), kept = |x| >= t, ternary signs, np.packbits of mask and
           signs, written to a file;
  compeft: .build/release/compeft compress IN -o OUT --density K --threads N (files in, container out),
           under /usr/bin/time for peak RSS.
It prints the best of --repeat rounds of each (a round runs every contender once, interleaved, each
after reading the input once so it comes from the page cache), params/s, and the ratio. A second table times
  decompress: .build/release/compeft decompress OUT -o X.safetensors --dtype bf16 --threads N (container in,
           bf16 safetensors out, synced to disk), against
  write:   the same number of bytes (2 per parameter) written to a new file and fsync'ed, the bound the
           file system puts on any decompressor here, measured in the same run.
Run from the repository root after `swift build -c release --product compeft`. `--compeft A,B` times several
builds (say, before and after a change) in the same interleaved rounds, and checks that they write the same
container bytes.
"""
import argparse, os, subprocess, sys, tempfile, time
import numpy as np
from safetensors.numpy import load_file, save_file

COMPEFT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "compeft")


def numpy_reference(path, density, out):
    tensors = load_file(path)
    x = np.concatenate([tensors[k].ravel() for k in sorted(tensors)])
    d = x.size
    sigma = float(x.astype(np.float64).std(ddof=1))
    k = int(d * (density / 100.0))
    m = d - k
    a = np.abs(x)
    t = np.partition(a, m - 1)[m - 1] if m > 0 else np.float32(0)
    kept = (a >= t) & (x != 0)
    mask = np.packbits(kept, bitorder="little")
    signs = np.packbits(x[kept] < 0, bitorder="little")
    with open(out, "wb") as f:
        f.write(np.float32(sigma).tobytes())
        f.write(mask.tobytes())
        f.write(signs.tobytes())
    return int(kept.sum())


def run_compeft(path, density, threads, out, binary=COMPEFT):
    cmd = ["/usr/bin/time", "-f", "%e %M", binary, "compress", path, "-o", out, "--density", str(density),
           "--threads", str(threads), "--force", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compeft failed: {r.stderr}")
    seconds, rss_kb = r.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(rss_kb)


def warm(path):
    """Reads a file once so the timed run finds it in the page cache."""
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def run_decompress(container, threads, out):
    if os.path.exists(out):
        os.remove(out)
    cmd = ["/usr/bin/time", "-f", "%e %M", COMPEFT, "decompress", container, "-o", out, "--dtype", "bf16",
           "--threads", str(threads), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compeft decompress failed: {r.stderr}")
    seconds, rss_kb = r.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(rss_kb)


def durable_write(nbytes, out):
    """Writes nbytes to a new file in 8 MiB blocks and fsyncs it: the file system's part of any decompress."""
    if os.path.exists(out):
        os.remove(out)
    block = b"\x01" * (8 << 20)
    t0 = time.perf_counter()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = nbytes
    while left > 0:
        left -= os.write(fd, block[:min(left, len(block))])
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e6,1e7,1e8")
    ap.add_argument("--density", type=float, default=10)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--compeft", default=COMPEFT, help="comma-separated compeft binaries, timed in the same rounds")
    ap.add_argument("--no-decompress", action="store_true")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    binaries = args.compeft.split(",")
    contenders = [(b, t) for b in binaries for t in threads]
    def label(b, t):
        return f"compeft {t}T" if len(binaries) == 1 else f"{b} {t}T"
    print(f"| params | numpy s | numpy params/s | " + " | ".join(
        f"{label(b, t)} s | params/s | peak RSS | × numpy" for b, t in contenders) + " |")
    print("|---:|---:|---:|" + "---:|---:|---:|---:|" * len(contenders))
    decompress_rows = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        path = os.path.join(args.dir, f"compeft-bench-{size}.safetensors")
        if not os.path.exists(path):
            rng = np.random.default_rng(size)
            per = size // 4
            save_file({f"layers.{i}.weight": rng.laplace(0, 0.01, per).astype(np.float32) for i in range(4)}, path)
        params = (size // 4) * 4
        # Rounds interleave the contenders, each reading the input from the page cache (read once
        # before every timed run), so machine noise and cache state fall on all of them alike.
        np_times = []
        runs = {c: [] for c in contenders}
        for _ in range(args.repeat):
            warm(path)
            np_times.append(_timed(lambda: numpy_reference(path, args.density, path + ".np.out")))
            for i, (b, t) in enumerate(contenders):
                warm(path)
                runs[(b, t)].append(run_compeft(path, args.density, t, path + f".{i}.cpeft", b))
        outputs = {open(path + f".{i}.cpeft", "rb").read() for i in range(len(contenders))}
        if len(outputs) != 1:
            sys.exit(f"the contenders wrote different containers for {size} values")
        os.replace(path + ".0.cpeft", path + ".cpeft")
        for i in range(1, len(contenders)):
            os.remove(path + f".{i}.cpeft")
        best_np = min(np_times)
        cells = [f"{params:.0e}", f"{best_np:.3f}", f"{params / best_np:.3g}"]
        for c in contenders:
            sec = min(r[0] for r in runs[c])
            rss = max(r[1] for r in runs[c])
            cells += [f"{sec:.3f}", f"{params / sec:.3g}", f"{rss / 1024:.0f} MiB", f"{best_np / sec:.1f}×"]
        print("| " + " | ".join(cells) + " |", flush=True)
        decompress_rows.append((size, path, params))
    if args.no_decompress:
        return
    print()
    print(f"| params | write 2 B/param + fsync s | " + " | ".join(
        f"decompress {t}T s | params/s | peak RSS | × write" for t in threads) + " |")
    print("|---:|---:|" + "---:|---:|---:|---:|" * len(threads))
    for size, path, params in decompress_rows:
        scratch = path + ".bf16.safetensors"
        writes = []
        runs = {t: [] for t in threads}
        for _ in range(args.repeat):
            writes.append(durable_write(2 * params, scratch))
            for t in threads:
                runs[t].append(run_decompress(path + ".cpeft", t, scratch))
        best_write = min(writes)
        cells = [f"{params:.0e}", f"{best_write:.3f}"]
        for t in threads:
            sec = min(r[0] for r in runs[t])
            rss = max(r[1] for r in runs[t])
            cells += [f"{sec:.3f}", f"{params / sec:.3g}", f"{rss / 1024:.0f} MiB", f"{sec / best_write:.2f}"]
        os.remove(scratch)
        print("| " + " | ".join(cells) + " |", flush=True)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
