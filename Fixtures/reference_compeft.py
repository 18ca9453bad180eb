#!/usr/bin/env python3
"""NumPy reference implementation of ComPEFT compression (the parity oracle
for the Swift `compeft` implementation).  Written to be plainly correct, not
fast.  Needs only numpy + safetensors (no torch).

Usage:
    python3 Fixtures/reference_compeft.py INPUT --density K
        [--alpha auto|FLOAT] [--method compeft|stc|prune] [--scope global|tensor]
        [--compress-all] [--base BASE] --out OUT.safetensors [--json STATS.json]

INPUT is one of
  * a PEFT adapter folder (adapter_config.json + adapter_model.safetensors);
  * a .safetensors file of residuals (every float tensor: init 0);
  * with --base BASE: a full fine-tune (a .safetensors file, or a folder with
    model.safetensors or a sharded model.safetensors.index.json); BASE is a
    .safetensors file or such a folder.  init = base tensor of the same name.

Algorithm (exactly the spec the Swift code follows):
 1. residual tau = value - init in float32 (every tensor is first converted to
    f32; f64 -> f32 by rounding; bf16 widened by << 16).
    PEFT LORA: names containing "lora_" are residuals, init 0.
    PEFT IA3:  names containing "ia3_"  are residuals, init 1.
    Other adapter tensors (modules_to_save, e.g. the classifier) are "exact"
    (written unchanged) unless --compress-all (then residuals with the
    adapter's init).  Non-float tensors are never compressed.
 2. NaN/Inf in a residual -> error naming the tensor (exit 1).
 3. scope global: all residuals flattened row-major, concatenated in name order
    (Python sort == bytewise UTF-8) into x (f32, d values).  scope tensor:
    steps 3-6 per tensor.
 4. sigma = unbiased std (ddof=1) in float64; 0 when d <= 1.
 5. k = int(d * (K / 100.0)); m = d - k.  m == 0: keep all.  Else
    t = m-th smallest |x| (1-based), kept = |x| >= t (ties kept; note this
    keeps k+1 values when there are no ties -- same as the TIES/ComPEFT code).
 6. compeft: s = alpha*sigma, or (alpha auto, norm-preserving) s = ||x||_2/sqrt(n)
    with ||x|| the norm of the WHOLE dense residual group, so that the ternary
    vector has the norm of the original; n = #kept and non-zero (s = 0 if n == 0).  s is f64, rounded to f32 once.
    value = s32 * sign(x) on kept, 0 elsewhere.  If sigma == 0 the residuals
    of that group are stored exactly (output = input).
    stc: s = alpha * mean(|x[kept]|) (alpha auto = 1), same ternary.
    prune: kept values unchanged, others 0.
 7. output = init + new residual in f32, cast back to the original dtype
    (f16: numpy RNE; bf16: RNE on the f32 bits).  Names, shapes, dtypes and
    __metadata__ preserved.
 8. --json: {"d","k","m","threshold","kept","kept_nonzero","sigma","scale",
    "alpha","exact"} (scope global), or {name: {...}} (scope tensor).
    threshold is 0.0 when m == 0 (everything kept).  scale is the f32 scale as
    a float (null for prune and for exact groups); alpha = s/sigma with s the
    f64 scale (null when sigma == 0 or method prune); exact = true when the
    group was stored exactly because sigma == 0 (compeft).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
from safetensors import safe_open

FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
NUMPY_DTYPES = {
    "F16": np.float16, "F32": np.float32, "F64": np.float64,
    "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
    "BOOL": np.bool_,
}


class CompeftError(Exception):
    pass


# ---------------------------------------------------------------- reading

class Tensor:
    """One tensor: dtype is the safetensors dtype string; data is a numpy
    array of that dtype, except BF16 whose data is the raw uint16 bits."""

    def __init__(self, name, dtype, shape, data):
        self.name = name
        self.dtype = dtype
        self.shape = list(shape)
        self.data = data

    def to_f32(self):
        if self.dtype == "BF16":
            bits = self.data.astype(np.uint32) << np.uint32(16)
            return bits.view(np.float32).reshape(self.shape)
        if self.dtype in ("F16", "F32", "F64"):
            return self.data.astype(np.float32)  # f64 -> f32 rounds to nearest
        raise CompeftError(f"tensor {self.name!r}: dtype {self.dtype} is not a float type")


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n).decode("utf-8"))
    return n, header


def read_safetensors(path):
    """Returns (metadata or None, {name: Tensor}).  Non-bf16 tensors via the
    safetensors package (numpy mode); bf16 parsed from the file directly."""
    n, header = read_header(path)
    metadata = header.pop("__metadata__", None)
    tensors = {}
    with open(path, "rb") as raw, safe_open(path, framework="np") as f:
        for name, info in header.items():
            dtype, shape = info["dtype"], info["shape"]
            if dtype == "BF16":
                start, end = info["data_offsets"]
                raw.seek(8 + n + start)
                buf = raw.read(end - start)
                data = np.frombuffer(buf, dtype="<u2").astype(np.uint16).reshape(shape)
            elif dtype in NUMPY_DTYPES:
                data = f.get_tensor(name)
            else:
                raise CompeftError(f"tensor {name!r}: unsupported dtype {dtype}")
            if list(data.shape) != list(shape):
                raise CompeftError(f"tensor {name!r}: shape mismatch in {path}")
            tensors[name] = Tensor(name, dtype, shape, data)
    return metadata, tensors


def read_model(path):
    """A .safetensors file, or a folder with model.safetensors.index.json
    (sharded) or model.safetensors.  Returns (metadata, {name: Tensor})."""
    if os.path.isfile(path):
        return read_safetensors(path)
    if not os.path.isdir(path):
        raise CompeftError(f"{path}: no such file or folder")
    index = os.path.join(path, "model.safetensors.index.json")
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        shards = sorted(set(weight_map.values()))
        metadata = None
        tensors = {}
        for i, shard in enumerate(shards):
            md, ts = read_safetensors(os.path.join(path, shard))
            if i == 0:
                metadata = md  # kept from the first shard (sorted by file name)
            for name, t in ts.items():
                if name in tensors:
                    raise CompeftError(f"tensor {name!r} appears in more than one shard")
                tensors[name] = t
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise CompeftError(f"tensor {missing[0]!r} listed in the index is missing from the shards")
        return metadata, tensors
    if os.path.isfile(single):
        return read_safetensors(single)
    raise CompeftError(f"{path}: no model.safetensors or model.safetensors.index.json")


# ---------------------------------------------------------------- writing

def f32_to_bf16_bits(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16))
    rounded = rounded & np.uint64(0xFFFF)
    nan_bits = ((bits >> np.uint64(16)) | np.uint64(0x0040)) & np.uint64(0xFFFF)
    out = np.where(np.isnan(x), nan_bits, rounded)
    return out.astype(np.uint16)


def from_f32(name, dtype, shape, x):
    """f32 array -> Tensor of the original dtype."""
    x = np.asarray(x, dtype=np.float32).reshape(shape)
    if dtype == "BF16":
        return Tensor(name, dtype, shape, f32_to_bf16_bits(x))
    if dtype == "F16":
        return Tensor(name, dtype, shape, x.astype(np.float16))  # numpy: round to nearest even
    if dtype == "F32":
        return Tensor(name, dtype, shape, x)
    if dtype == "F64":
        return Tensor(name, dtype, shape, x.astype(np.float64))
    raise CompeftError(f"tensor {name!r}: cannot write dtype {dtype} from f32")


def tensor_bytes(t):
    if t.dtype == "BF16":
        return np.ascontiguousarray(t.data, dtype="<u2").tobytes()
    dt = np.dtype(NUMPY_DTYPES[t.dtype])
    if dt.itemsize > 1:
        dt = dt.newbyteorder("<")
    return np.ascontiguousarray(t.data, dtype=dt).tobytes()


def write_safetensors(path, tensors, metadata):
    """Write {name: Tensor} (in name order) with the given __metadata__."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------- the algorithm

def sigma_of(x):
    d = x.size
    if d <= 1:
        return 0.0
    x64 = x.astype(np.float64)
    mean = math.fsum(x64.tolist()) / d
    var = math.fsum(((x64 - mean) ** 2).tolist()) / (d - 1)
    return math.sqrt(var)


def compress_vector(x, density, method, alpha):
    """x: 1-D float32 vector.  Returns (new residual vector f32, stats, exact).
    exact=True means: store this group's tensors unchanged."""
    d = int(x.size)
    sigma = sigma_of(x)
    k = int(d * (density / 100.0))
    m = d - k
    a = np.abs(x)
    if m == 0:
        threshold = np.float32(0.0)
        kept = np.ones(d, dtype=bool)
    else:
        threshold = np.partition(a, m - 1)[m - 1]
        kept = a >= threshold
    n_kept = int(np.count_nonzero(kept))
    nonzero_kept = kept & (x != 0)
    n = int(np.count_nonzero(nonzero_kept))
    stats = {
        "d": d, "k": k, "m": m, "threshold": float(threshold),
        "kept": n_kept, "kept_nonzero": n, "sigma": sigma,
        "scale": None, "alpha": None, "exact": False,
    }

    if method == "prune":
        return np.where(kept, x, np.float32(0.0)).astype(np.float32), stats, False

    if method == "compeft":
        if sigma == 0.0:
            stats["exact"] = True
            return x.copy(), stats, True
        if alpha == "auto":
            if n == 0:
                s = 0.0
            else:
                sq = x.astype(np.float64) ** 2
                s = math.sqrt(math.fsum(sq.tolist())) / math.sqrt(n)
        else:
            s = float(alpha) * sigma
    elif method == "stc":
        a_ = 1.0 if alpha == "auto" else float(alpha)
        if n_kept == 0:
            s = 0.0
        else:
            s = a_ * (math.fsum(a[kept].astype(np.float64).tolist()) / n_kept)
    else:
        raise CompeftError(f"unknown method {method}")

    s32 = np.float32(s)
    stats["scale"] = float(s32)
    stats["alpha"] = (s / sigma) if sigma != 0.0 else None
    signs = np.sign(x).astype(np.float32)
    new = np.where(kept, signs * s32, np.float32(0.0)).astype(np.float32)
    return new, stats, False


def classify(args):
    """Returns (metadata, tensors, plan) with plan[name] = None (exact) or the
    init as a float32 array."""
    inp = args.input
    if os.path.isdir(inp) and os.path.isfile(os.path.join(inp, "adapter_config.json")):
        if args.base is not None:
            raise CompeftError("--base cannot be used with a PEFT adapter folder")
        with open(os.path.join(inp, "adapter_config.json")) as f:
            cfg = json.load(f)
        peft_type = cfg.get("peft_type")
        if peft_type == "LORA":
            marker, init_value = "lora_", 0.0
        elif peft_type == "IA3":
            marker, init_value = "ia3_", 1.0
        else:
            raise CompeftError(f"unsupported peft_type {peft_type!r}")
        st = os.path.join(inp, "adapter_model.safetensors")
        if not os.path.isfile(st):
            raise CompeftError(f"{st}: not found")
        metadata, tensors = read_safetensors(st)
        plan = {}
        for name, t in tensors.items():
            if t.dtype in FLOAT_DTYPES and (marker in name or args.compress_all):
                plan[name] = np.full(t.shape, init_value, dtype=np.float32)
            else:
                plan[name] = None
        return metadata, tensors, plan

    if args.base is not None:
        metadata, tensors = read_model(inp)
        _, base = read_model(args.base)
        plan = {}
        for name in sorted(tensors):
            t = tensors[name]
            if t.dtype not in FLOAT_DTYPES:
                plan[name] = None
                continue
            if name not in base:
                raise CompeftError(f"tensor {name!r} is missing from the base model")
            b = base[name]
            if list(b.shape) != list(t.shape):
                raise CompeftError(f"tensor {name!r}: shape {t.shape} differs from the base's {b.shape}")
            if b.dtype not in FLOAT_DTYPES:
                raise CompeftError(f"tensor {name!r}: base tensor has non-float dtype {b.dtype}")
            plan[name] = b.to_f32()
        return metadata, tensors, plan

    if os.path.isfile(inp):
        metadata, tensors = read_safetensors(inp)
        plan = {name: (np.zeros(t.shape, dtype=np.float32) if t.dtype in FLOAT_DTYPES else None)
                for name, t in tensors.items()}
        return metadata, tensors, plan

    if os.path.isdir(inp):
        raise CompeftError(f"{inp}: no adapter_config.json (for a full fine-tune pass --base)")
    raise CompeftError(f"{inp}: no such file or folder")


def run(args):
    if not (0.0 < args.density <= 100.0):
        raise CompeftError(f"--density must be in (0, 100], got {args.density}")
    alpha = args.alpha
    if alpha != "auto":
        try:
            alpha = float(alpha)
        except ValueError:
            raise CompeftError(f"--alpha must be 'auto' or a number, got {args.alpha!r}")
        if not math.isfinite(alpha):
            raise CompeftError("--alpha must be finite")

    metadata, tensors, plan = classify(args)

    residual_names = sorted(n for n in plan if plan[n] is not None)
    residuals = {}
    for name in residual_names:
        tau = (tensors[name].to_f32() - plan[name]).astype(np.float32)
        if not np.all(np.isfinite(tau)):
            raise CompeftError(f"tensor {name!r}: residual contains NaN or Inf")
        residuals[name] = tau

    out = {name: t for name, t in tensors.items()}  # exact by default

    def apply(names, new_vec):
        pos = 0
        for name in names:
            size = residuals[name].size
            r = new_vec[pos:pos + size].reshape(residuals[name].shape)
            pos += size
            value = (plan[name] + r).astype(np.float32)
            t = tensors[name]
            out[name] = from_f32(name, t.dtype, t.shape, value)

    if args.scope == "global":
        if residual_names:
            x = np.concatenate([residuals[n].ravel() for n in residual_names]).astype(np.float32)
        else:
            x = np.zeros(0, dtype=np.float32)
        new, stats, exact = compress_vector(x, args.density, args.method, alpha)
        if not exact:
            apply(residual_names, new)
        all_stats = stats
    else:
        all_stats = {}
        for name in residual_names:
            x = residuals[name].ravel().astype(np.float32)
            new, stats, exact = compress_vector(x, args.density, args.method, alpha)
            if not exact:
                apply([name], new)
            all_stats[name] = stats

    write_safetensors(args.out, out, metadata)

    # round-trip self check: the written file reads back with identical layout
    md2, back = read_safetensors(args.out)
    if md2 != metadata or sorted(back) != sorted(tensors):
        raise CompeftError("internal error: output names/metadata differ from input")
    for name, t in tensors.items():
        if back[name].dtype != t.dtype or back[name].shape != t.shape:
            raise CompeftError(f"internal error: tensor {name!r} layout changed")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(all_stats, f, indent=2, sort_keys=False)
            f.write("\n")

    n_res = sum(residuals[n].size for n in residual_names)
    print(f"wrote {args.out}: {len(tensors)} tensors, {len(residual_names)} residual tensors, "
          f"{n_res} residual values ({args.method}, {args.scope}, density {args.density}%)")


def main(argv=None):
    p = argparse.ArgumentParser(description="NumPy reference ComPEFT compression")
    p.add_argument("input")
    p.add_argument("--density", type=float, required=True, help="percent kept, 0 < K <= 100")
    p.add_argument("--alpha", default="auto", help="'auto' or a float")
    p.add_argument("--method", choices=["compeft", "stc", "prune"], default="compeft")
    p.add_argument("--scope", choices=["global", "tensor"], default="global")
    p.add_argument("--compress-all", action="store_true",
                   help="also compress the adapter's non-adapter float tensors (modules_to_save)")
    p.add_argument("--base", default=None, help="base model for a full fine-tune")
    p.add_argument("--out", required=True)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    try:
        run(args)
    except CompeftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
