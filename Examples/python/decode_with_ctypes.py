#!/usr/bin/env python3
"""Decode every tensor of a .cpeft container through compeft's C ABI, from Python with ctypes and numpy only,
and check each one against what `compeft decompress` wrote (read with the safetensors package, numpy mode).

    bash scripts/build-libcompeft.sh                  # or: swift build (gives .build/debug/libCompeftC.so)
    compeft compress Fixtures/files/lora-gpt2-bf16 -o lora.cpeft
    compeft decompress lora.cpeft -o restored
    python3 Examples/python/decode_with_ctypes.py lora.cpeft restored [--f32 DIR] [--lib PATH]

DECOMPRESSED is the decompressed output: a .safetensors file, or a folder (a PEFT adapter, a sharded
checkpoint). The library is --lib, else $COMPEFT_LIB, else .build/release/libcompeft.so, else
.build/release/libCompeftC.so (swift build -c release), else .build/debug/libCompeftC.so (relative to the
repository root).

Every float tensor is decoded as F32, F16 and BF16. Decoded in its own dtype it must equal the decompressed
bytes exactly; the F32 decode must round to the decompressed values (equal them, for F32 and F64 tensors);
F16 must be numpy's rounding of the F32 decode, and BF16 (numpy has none: uint16 bit patterns, widened
with << 16) its round-to-nearest-even. With --f32 (`compeft decompress --dtype f32` output) the F32 decode
must also equal that exactly. Non-float tensors (I64, ...) must be refused with COMPEFT_ERR_UNSUPPORTED.
Exit status 0 when everything matches, 1 otherwise.
"""

import argparse
import ctypes
import json
import os
import struct
import sys

import numpy as np
from safetensors import safe_open

# ---- the C ABI (include/compeft.h) ----------------------------------------------------------------

COMPEFT_OK = 0
COMPEFT_ERR_UNSUPPORTED = 6
DTYPE_F32, DTYPE_F16, DTYPE_BF16 = 1, 2, 3
DTYPE_NAMES = {1: "F32", 2: "F16", 3: "BF16", 4: "F64", 5: "I64", 6: "I32", 7: "I16", 8: "I8", 9: "U64",
               10: "U32", 11: "U16", 12: "U8", 13: "BOOL", 14: "F8_E5M2", 15: "F8_E4M3"}
MAX_RANK = 8


class TensorDesc(ctypes.Structure):
    """compeft_tensor_desc: 128 bytes, no padding."""
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("file", ctypes.c_char_p),
        ("rank", ctypes.c_uint32),
        ("dtype", ctypes.c_int32),
        ("role", ctypes.c_int32),
        ("init", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("count", ctypes.c_int64),
        ("kept", ctypes.c_int64),
        ("nonzero", ctypes.c_int64),
        ("scale", ctypes.c_float),
        ("encoding", ctypes.c_uint32),
    ]


assert ctypes.sizeof(TensorDesc) == 128


class CompeftError(Exception):
    def __init__(self, lib, status, call):
        self.status = status
        name = lib.compeft_status_name(status).decode()
        message = lib.compeft_last_error().decode("utf-8", "replace")
        super().__init__(f"{call}: {name}: {message}")


def load_library(path):
    lib = ctypes.CDLL(path)
    handle, size_t, status = ctypes.c_uint64, ctypes.c_size_t, ctypes.c_int32
    signatures = {
        "compeft_version": ([], ctypes.c_char_p),
        "compeft_abi_version": ([], ctypes.c_uint32),
        "compeft_last_error": ([], ctypes.c_char_p),
        "compeft_status_name": ([status], ctypes.c_char_p),
        "compeft_open": ([ctypes.c_char_p, ctypes.POINTER(handle)], status),
        "compeft_close": ([handle], status),
        "compeft_tensor_count": ([handle, ctypes.POINTER(size_t)], status),
        "compeft_tensor_info": ([handle, size_t, ctypes.POINTER(TensorDesc)], status),
        "compeft_find_tensor": ([handle, ctypes.c_char_p, ctypes.POINTER(size_t)], status),
        "compeft_decode": ([handle, size_t, ctypes.c_int32, ctypes.c_void_p, size_t], status),
        "compeft_apply": ([handle, size_t, ctypes.c_int32, ctypes.c_void_p, size_t, ctypes.c_float], status),
        "compeft_metadata_json": ([handle, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)], status),
        "compeft_adapter_config": ([handle, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)], status),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    if lib.compeft_abi_version() < 1:  # version 2 added functions; version 1's are unchanged
        raise RuntimeError(f"{path}: ABI version {lib.compeft_abi_version()}, this script needs 1 or later")
    return lib


class Container:
    """An open container; use it in a `with` block so the handle is closed."""

    def __init__(self, lib, path):
        self.lib = lib
        self.handle = ctypes.c_uint64(0)
        self._check(lib.compeft_open(os.fsencode(path), ctypes.byref(self.handle)), "compeft_open")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._check(self.lib.compeft_close(self.handle), "compeft_close")

    def _check(self, status, call):
        if status != COMPEFT_OK:
            raise CompeftError(self.lib, status, call)

    def tensors(self):
        count = ctypes.c_size_t(0)
        self._check(self.lib.compeft_tensor_count(self.handle, ctypes.byref(count)), "compeft_tensor_count")
        for index in range(count.value):
            desc = TensorDesc()
            self._check(self.lib.compeft_tensor_info(self.handle, index, ctypes.byref(desc)), "compeft_tensor_info")
            yield index, desc

    def _text(self, function, call, missing_ok=False):
        needed = ctypes.c_size_t(0)
        function(self.handle, None, 0, ctypes.byref(needed))  # BUFFER_TOO_SMALL, with the size
        buffer = ctypes.create_string_buffer(needed.value)
        status = function(self.handle, buffer, needed.value, ctypes.byref(needed))
        if missing_ok and status == 3:  # COMPEFT_ERR_NOT_FOUND
            return None
        self._check(status, call)
        return buffer.raw[: needed.value - 1]

    def metadata(self):
        return json.loads(self._text(self.lib.compeft_metadata_json, "compeft_metadata_json"))

    def adapter_config(self):
        return self._text(self.lib.compeft_adapter_config, "compeft_adapter_config", missing_ok=True)

    def decode(self, index, desc, dtype):
        """The tensor as a numpy array: float32 for F32, float16 for F16, uint16 bit patterns for BF16."""
        shape = tuple(desc.shape[: desc.rank])
        out = np.empty(shape, dtype={DTYPE_F32: np.float32, DTYPE_F16: np.float16, DTYPE_BF16: np.uint16}[dtype])
        status = self.lib.compeft_decode(self.handle, index, dtype, out.ctypes.data_as(ctypes.c_void_p), out.nbytes)
        self._check(status, f"compeft_decode('{desc.name.decode()}')")
        return out

    def decode_status(self, index, dtype):
        scratch = np.empty(1, dtype=np.float32)
        return self.lib.compeft_decode(self.handle, index, dtype, scratch.ctypes.data_as(ctypes.c_void_p), 0)


# ---- reading the decompressed output -------------------------------------------------------------


def read_restored(path, name):
    """(dtype, float32 values, raw little-endian bytes) of one tensor, read with safetensors."""
    with open(path, "rb") as raw:
        n = struct.unpack("<Q", raw.read(8))[0]
        info = json.loads(raw.read(n).decode("utf-8"))[name]
        start, end = info["data_offsets"]
        raw.seek(8 + n + start)
        data = raw.read(end - start)
    dtype = info["dtype"]
    with safe_open(path, framework="np") as f:
        if dtype == "BF16":  # numpy has no bfloat16: widen the raw bits
            bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << np.uint32(16)
            values = bits.view(np.float32).reshape(info["shape"])
        else:
            values = f.get_tensor(name)
    return dtype, values, data


def locate(decompressed, desc):
    """The safetensors file holding a tensor: the output itself, or the tensor's file in the folder."""
    return os.path.join(decompressed, desc.file.decode()) if os.path.isdir(decompressed) else decompressed


def bf16_bits(x):
    """float32 → bfloat16 bit patterns, rounding to nearest, ties to even (NaN stays NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((bits[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


# ---- the check ------------------------------------------------------------------------------------


def default_library():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for candidate in [os.environ.get("COMPEFT_LIB"), os.path.join(root, ".build/release/libcompeft.so"),
                      os.path.join(root, ".build/release/libCompeftC.so"), os.path.join(root, ".build/debug/libCompeftC.so")]:
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("container")
    parser.add_argument("decompressed", help="what `compeft decompress CONTAINER -o ...` wrote")
    parser.add_argument("--f32", default=None, metavar="DECOMPRESSED_F32",
                        help="also compare F32 decodes with `compeft decompress --dtype f32` output")
    parser.add_argument("--lib", default=None, help="libcompeft.so / libCompeftC.so")
    args = parser.parse_args()
    library = args.lib or default_library()
    if library is None:
        print("error: no libcompeft.so found; run scripts/build-libcompeft.sh or pass --lib", file=sys.stderr)
        return 1
    lib = load_library(library)
    print(f"{library}: compeft {lib.compeft_version().decode()}")

    problems = []
    decoded = skipped = 0
    with Container(lib, args.container) as container:
        meta = container.metadata()
        print(f"{args.container}: {meta['inputKind']}" + (f" ({meta['peftType']})" if meta.get("peftType") else "")
              + f", {len(meta['tensors'])} tensors, written by {meta['tool']}")
        config = container.adapter_config()
        if config is not None and os.path.isdir(args.decompressed):
            with open(os.path.join(args.decompressed, "adapter_config.json"), "rb") as f:
                if f.read() != config:
                    problems.append("adapter_config.json differs from the decompressed one")
        for index, desc in container.tensors():
            name = desc.name.decode()
            kind = DTYPE_NAMES.get(desc.dtype, str(desc.dtype))
            shape = list(desc.shape[: desc.rank])
            if kind not in ("F32", "F16", "BF16", "F64"):
                status = container.decode_status(index, DTYPE_F32)
                if status == COMPEFT_ERR_UNSUPPORTED:
                    print(f"  skip {name} {kind} {shape}: not floating point (COMPEFT_ERR_UNSUPPORTED, as it should be)")
                    skipped += 1
                else:
                    problems.append(f"{name}: decoding a {kind} tensor returned {lib.compeft_status_name(status).decode()}")
                continue
            restored_kind, restored, raw = read_restored(locate(args.decompressed, desc), name)
            f32 = container.decode(index, desc, DTYPE_F32)
            f16 = container.decode(index, desc, DTYPE_F16)
            bf16 = container.decode(index, desc, DTYPE_BF16)
            checks = {"dtype": restored_kind == kind, "shape": list(restored.shape) == shape}
            # The tensor's own dtype: byte for byte what decompress wrote.
            native = {"F32": f32, "F16": f16, "BF16": bf16}.get(kind)
            if native is not None:
                checks[kind] = np.ascontiguousarray(native).tobytes() == raw
            else:  # F64 holds binary32 values (or, stored exactly, rounds to the same F32)
                checks["F32"] = same_bits(f32, np.asarray(restored).astype(np.float32))
            # F32 rounds to the decompressed values; F16 and BF16 are F32 rounded to nearest, ties to even.
            if kind == "F16":
                checks["F32→F16"] = same_bits(f32.astype(np.float16), restored)
            if kind == "BF16":
                checks["F32→BF16"] = same_bits(bf16_bits(f32), np.frombuffer(raw, dtype="<u2").reshape(shape))
                widened = (bf16.astype(np.uint32) << np.uint32(16)).view(np.float32)
                checks["BF16<<16"] = same_bits(widened, restored)  # read_restored widens the file's bits too
            checks["F16"] = same_bits(f16, f32.astype(np.float16))
            checks["BF16"] = same_bits(bf16, bf16_bits(f32))
            if args.f32 is not None:  # `compeft decompress --dtype f32`: the F32 decode exactly
                _, exact, _ = read_restored(locate(args.f32, desc), name)
                checks["F32 (--f32)"] = same_bits(f32, exact)
            failed = [k for k, ok in checks.items() if not ok]
            if failed:
                problems.append(f"{name}: {', '.join(failed)} differ from {args.decompressed}")
            decoded += 1
            print(f"  {'FAIL' if failed else 'ok  '} {name} {kind} {shape}: decoded as F32, F16, BF16"
                  + (f" (mismatch: {', '.join(failed)})" if failed else ""))

    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {decoded} tensors decoded through the C ABI match {args.decompressed} ({skipped} non-float skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
