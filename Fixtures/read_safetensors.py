#!/usr/bin/env python3
"""Print a JSON summary of a safetensors file, read with the real `safetensors`
package (numpy mode).  Needs only numpy + safetensors (no torch).

Usage:  python3 Fixtures/read_safetensors.py FILE [--metadata]

Output: {name: {"dtype": "F32", "shape": [..], "sum": float64, "l2": float64}}
sorted by name.  sum / l2 are computed in float64.  numpy has no bfloat16, so
BF16 tensors are read from the file's bytes (after safe_open has validated the
file) and widened to f32 by shifting the uint16 bits left 16.  Non-finite
sums are written as the strings "NaN", "Infinity", "-Infinity" (plain JSON has
no such numbers).  With --metadata the file's __metadata__ is added under the
key "__metadata__" (a name no tensor can have).
Exit status 1 (message on stderr) if the file cannot be read.
"""

import json
import math
import struct
import sys

import numpy as np
from safetensors import safe_open


def finite_or_string(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def summarize(path, with_metadata=False):
    with open(path, "rb") as raw:
        n = struct.unpack("<Q", raw.read(8))[0]
        header = json.loads(raw.read(n).decode("utf-8"))
    out = {}
    with open(path, "rb") as raw, safe_open(path, framework="np") as f:
        metadata = f.metadata()
        for name in sorted(f.keys()):
            info = header[name]
            dtype = info["dtype"]
            if dtype == "BF16":
                start, end = info["data_offsets"]
                raw.seek(8 + n + start)
                bits = np.frombuffer(raw.read(end - start), dtype="<u2").astype(np.uint32) << np.uint32(16)
                x = bits.view(np.float32).reshape(info["shape"])
            else:
                x = f.get_tensor(name)
            x64 = x.astype(np.float64)
            out[name] = {
                "dtype": dtype,
                "shape": list(x.shape),
                "sum": finite_or_string(np.sum(x64)),
                "l2": finite_or_string(math.sqrt(np.sum(x64 * x64))),
            }
    if with_metadata:
        out["__metadata__"] = metadata
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--metadata"]
    if len(args) != 1:
        print("usage: read_safetensors.py FILE [--metadata]", file=sys.stderr)
        return 2
    try:
        summary = summarize(args[0], "--metadata" in sys.argv[1:])
    except Exception as e:  # any failure to read is an error
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
