#!/usr/bin/env python3
"""Writes the HDF5 and PyTorch `.bin` fixtures for the TaskVector readers.

Outputs go to `files/formats/` beside this script, together with `expected.json`, which lists for
every tensor a reader must produce its dtype (compeft's spelling), shape, and either the exact values
(a flat row-major list; floats widened exactly to float64, non-finite values spelled "nan", "inf",
"-inf") or, for larger tensors, the float64 sum and sum of squares.

Requirements: numpy, h5py; torch (CPU) for the `.bin` files written by the real `torch.save`.
The malicious and malformed `.bin` files are built byte by byte: nothing here, and nothing in the
tests, ever unpickles them.

Run: python3 Fixtures/make_format_fixtures.py
"""

import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files", "formats")
SMALL = 64  # tensors with at most this many elements list their values in expected.json

expected = {}


def spell(x):
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def record(file, name, dtype, array):
    """Remembers what a reader must produce for tensor `name` of `file`."""
    a = np.asarray(array)
    entry = {"dtype": dtype, "shape": list(a.shape)}
    flat = a.reshape(-1)
    is_int = dtype in ("I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL")
    if flat.size <= SMALL:
        entry["values"] = [int(v) for v in flat] if is_int else [spell(v) for v in flat.astype(np.float64)]
    else:
        wide = flat.astype(np.float64)
        entry["sum"] = float(wide.sum())
        entry["sumOfSquares"] = float((wide * wide).sum())
    expected.setdefault(file, {})[name] = entry


def seeded(seed, shape, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# MARK: - HDF5


def keras_weights():
    """Keras 3 `.weights.h5` layout: one group per layer, variables numbered under `vars`."""
    name = "keras.weights.h5"
    with h5py.File(os.path.join(OUT, name), "w") as f:
        f.attrs["keras_version"] = "3.6.0"
        layers = {
            "dense": [seeded(1, (64, 32)), seeded(2, (32,))],
            "dense_1": [seeded(3, (32, 8)), seeded(4, (8,))],
        }
        for layer, variables in layers.items():
            g = f.create_group(f"layers/{layer}/vars")
            for i, v in enumerate(variables):
                g.create_dataset(str(i), data=v)
                record(name, f"layers.{layer}.vars.{i}", "F32", v)
        f.create_group("vars")  # Keras writes an empty top-level `vars` group
        iterations = np.int64(1234)
        f.create_group("optimizer/vars").create_dataset("0", data=iterations)
        record(name, "optimizer.vars.0", "I64", iterations)


def bfloat16_type():
    """A custom HDF5 float with bfloat16's layout (sign 15, exponent 7..14, mantissa 0..6)."""
    t = h5py.h5t.IEEE_F32LE.copy()
    t.set_fields(15, 7, 8, 0, 7)
    t.set_size(2)
    t.set_ebias(127)
    return t


def mixed_types():
    """Both byte orders, every float width, the integer types, scalars, an empty and a compressed dataset."""
    name = "mixed.h5"
    specials = np.array([1.5, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38, -2.0], dtype=np.float32).reshape(2, 4)
    f64 = np.array([np.pi, -1e300, 5e-324], dtype=np.float64)
    f16 = np.array([[1.0, -2.5, 65504.0], [6e-8, np.inf, 0.333]], dtype=np.float16)
    i64 = np.array([-(2**63), 2**63 - 1, 0, -1, 42], dtype=np.int64)
    u64 = np.array([0, 2**64 - 1, 2**63], dtype=np.uint64)
    i32be = np.array([-7, 2**31 - 1, -(2**31)], dtype=np.int32)
    with h5py.File(os.path.join(OUT, name), "w") as f:
        f.create_dataset("be/f32", data=specials.astype(">f4"))
        record(name, "be.f32", "F32", specials)
        f.create_dataset("be/f64", data=f64.astype(">f8"))
        record(name, "be.f64", "F64", f64)
        f.create_dataset("be/f16", data=f16.astype(">f2"))
        record(name, "be.f16", "F16", f16)
        f.create_dataset("be/i32", data=i32be.astype(">i4"))
        record(name, "be.i32", "I32", i32be)
        f.create_dataset("le/f16", data=f16)
        record(name, "le.f16", "F16", f16)
        f.create_dataset("le/f64", data=f64)
        record(name, "le.f64", "F64", f64)
        f.create_dataset("int/i64", data=i64)
        record(name, "int.i64", "I64", i64)
        f.create_dataset("int/u64", data=u64)
        record(name, "int.u64", "U64", u64)
        for dt, tag in [(np.int8, "I8"), (np.uint8, "U8"), (np.int16, "I16"), (np.uint16, "U16"), (np.uint32, "U32")]:
            info = np.iinfo(dt)
            v = np.array([info.min, info.max, 0, 1], dtype=dt)
            f.create_dataset(f"int/{tag.lower()}", data=v)
            record(name, f"int.{tag.lower()}", tag, v)
        f.create_dataset("scalar/f32", data=np.float32(-3.25))
        record(name, "scalar.f32", "F32", np.float32(-3.25))
        f.create_dataset("scalar/i32", data=np.int32(-5))
        record(name, "scalar.i32", "I32", np.int32(-5))
        empty = np.zeros((0, 4), dtype=np.float32)
        f.create_dataset("empty", data=empty)
        record(name, "empty", "F32", empty)
        big = seeded(5, (64, 48))
        f.create_dataset("compressed/gzip", data=big, chunks=(16, 16), compression="gzip", shuffle=True)
        record(name, "compressed.gzip", "F32", big)
        f.create_dataset("deep/a/b/c/kernel:0", data=np.arange(6, dtype=np.float32).reshape(2, 3))
        record(name, "deep.a.b.c.kernel:0", "F32", np.arange(6, dtype=np.float32).reshape(2, 3))
        bf16_bits = np.array([0x3F80, 0xC000, 0x7F80, 0x0001, 0x8000, 0x4049], dtype="<u2")
        space = h5py.h5s.create_simple((2, 3))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_obj_track_times(False)  # like h5py's high-level API, so the file is reproducible
        dsid = h5py.h5d.create(f.id, b"bf16", bfloat16_type(), space, dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, bf16_bits.reshape(2, 3), mtype=bfloat16_type())
        widened = (bf16_bits.astype(np.uint32) << 16).view(np.float32)
        record(name, "bf16", "BF16", widened.reshape(2, 3))


def unsupported_types():
    """One valid dataset beside a string, a compound and an enum (h5py's bool) dataset."""
    with h5py.File(os.path.join(OUT, "unsupported.h5"), "w") as f:
        f.create_dataset("ok", data=np.array([1.0, 2.0], dtype=np.float32))
        f.create_dataset("names", data=np.array([b"alpha", b"beta"], dtype="S8"))
        f.create_dataset("records", data=np.array([(1, 2.0)], dtype=[("id", "<i4"), ("w", "<f8")]))
        f.create_dataset("flags", data=np.array([True, False]))
    record("unsupported.h5", "ok", "F32", np.array([1.0, 2.0], dtype=np.float32))


def lying_hdf5():
    """A dataset declaring 16 GiB of float32 that was never written (no storage allocated)."""
    with h5py.File(os.path.join(OUT, "huge_unwritten.h5"), "w") as f:
        f.create_dataset("huge", shape=(1 << 20, 1 << 12), dtype=np.float32)


def outside_references():
    """HDF5 files that point outside themselves, and nesting just inside and outside the reader's limit.

    compeft must read none of what these point at: external storage naming /etc/passwd, a virtual
    dataset mapped onto another fixture, an external link into another fixture (never followed), a
    soft link, and a hard link back to an ancestor group (a cycle, walked once).
    """
    with h5py.File(os.path.join(OUT, "external_storage.h5"), "w") as f:
        f.create_dataset("leak", shape=(4,), dtype=np.float32, external=[("/etc/passwd", 0, 16)])
    with h5py.File(os.path.join(OUT, "virtual.h5"), "w", libver=("v110", "v110")) as f:
        space = h5py.h5s.create_simple((3,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_obj_track_times(False)  # reproducible bytes
        dcpl.set_virtual(space, b"keras.weights.h5", b"layers/dense/vars/1", h5py.h5s.create_simple((3,)))
        h5py.h5d.create(f.id, b"mirror", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl).close()
    with h5py.File(os.path.join(OUT, "links.h5"), "w") as f:
        w = np.array([1.0, 2.0], dtype=np.float32)
        x = np.array([3.0], dtype=np.float32)
        f.create_dataset("w", data=w)
        g = f.create_group("g")
        g.create_dataset("x", data=x)
        g["again"] = g  # a hard link to its own group: a cycle
        f["soft"] = h5py.SoftLink("/w")
        f["outside"] = h5py.ExternalLink("keras.weights.h5", "/layers")
    record("links.h5", "g.x", "F32", x)
    record("links.h5", "w", "F32", w)
    # HDF5Reader.maxDepth is 64: a dataset 64 groups below the root is read, one 65 below is refused.
    for depth in (64, 65):
        name = f"nested_{depth}.h5"
        with h5py.File(os.path.join(OUT, name), "w") as f:
            g = f
            for _ in range(depth):
                g = g.create_group("g")
            g.create_dataset("x", data=np.array([float(depth)], dtype=np.float32))
        if depth == 64:
            record(name, ".".join(["g"] * depth + ["x"]), "F32", np.array([64.0], dtype=np.float32))


# MARK: - PyTorch


def torch_fixtures():
    import torch

    name = "adapter_model.bin"
    big = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    g = torch.Generator().manual_seed(7)
    tensors = {
        "base_model.model.q.lora_A.weight": torch.randn(8, 16, generator=g),
        "base_model.model.q.lora_B.weight": torch.randn(16, 8, generator=g).to(torch.float16),
        "base_model.model.v.lora_A.weight": torch.randn(4, 4, generator=g).to(torch.bfloat16),
        "double": torch.tensor([1.0 / 3.0, -1e300, 5e-324], dtype=torch.float64),
        "steps": torch.tensor([-(2**63), 2**63 - 1, 0, 7], dtype=torch.int64),
        "int32": torch.tensor([-5, 2**31 - 1], dtype=torch.int32),
        "int16": torch.tensor([-300, 300], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
        "scale": torch.tensor(0.125),
        "empty": torch.zeros(0, 3),
        "big": big,
        "slice": big[2:5],  # shares big's storage: storage_offset 8, shape (3, 4)
        "param": torch.nn.Parameter(torch.tensor([[1.5, -2.0]])),
        "large": torch.randn(24, 20, generator=g),
    }
    torch.save(tensors, os.path.join(OUT, name))
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}
    for key, t in tensors.items():
        t = t.detach()
        values = t.to(torch.float64).numpy() if t.dtype.is_floating_point else t.to(torch.int64).numpy()
        record(name, key, dtypes[t.dtype], values)

    # A real module state dict: an OrderedDict with `_metadata`, pickled with BUILD.
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]]))
        lin.bias.copy_(torch.tensor([0.5, -0.5]))
    torch.save(lin.state_dict(), os.path.join(OUT, "linear_state_dict.bin"))
    record("linear_state_dict.bin", "weight", "F32", lin.weight.detach().numpy())
    record("linear_state_dict.bin", "bias", "F32", lin.bias.detach().numpy())

    # A training checkpoint: nested dicts join with '.', non-tensor leaves are ignored.
    torch.save({"epoch": 3, "name": "run-1", "model": {"w": torch.tensor([1.0, 2.0]), "inner": {"b": torch.tensor([3.0])}}},
               os.path.join(OUT, "nested_checkpoint.bin"))
    record("nested_checkpoint.bin", "model.w", "F32", np.array([1.0, 2.0]))
    record("nested_checkpoint.bin", "model.inner.b", "F32", np.array([3.0]))

    # Non-contiguous tensor (a transpose is saved with its strides).
    torch.save({"t": big.t()}, os.path.join(OUT, "noncontiguous.bin"))

    # Legacy (pre-1.6) serialization: not a zip.
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "legacy_format.bin"), _use_new_zipfile_serialization=False)

    # The good adapter again, every entry deflated.
    with zipfile.ZipFile(os.path.join(OUT, name)) as src, \
            zipfile.ZipFile(os.path.join(OUT, "compressed_entries.bin"), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(fixed_time(info.filename, zipfile.ZIP_DEFLATED), src.read(info.filename))

    # Truncated: the first half of the good file (the central directory is gone).
    with open(os.path.join(OUT, name), "rb") as fh:
        good = fh.read()
    with open(os.path.join(OUT, "truncated.bin"), "wb") as fh:
        fh.write(good[: len(good) // 2])

    # Central directory claims an entry far larger than the file.
    lying = bytearray(good)
    cd = lying.find(b"PK\x01\x02")
    struct.pack_into("<II", lying, cd + 20, 0x7FFF0000, 0x7FFF0000)
    with open(os.path.join(OUT, "lying_entry_size.bin"), "wb") as fh:
        fh.write(lying)

    # The encrypted flag set on every entry (central and local headers).
    enc = bytearray(good)
    for sig, at in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):
        i = enc.find(sig)
        while i >= 0:
            enc[i + at] |= 1
            i = enc.find(sig, i + 4)
    with open(os.path.join(OUT, "encrypted_flag.bin"), "wb") as fh:
        fh.write(enc)


# MARK: - Hand-built pickles (never executed)


def op_unicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def op_int(n):
    return b"J" + struct.pack("<i", n)


def op_long(n):
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def tensor_pickle(offset, size, stride, key="0", numel=4, storage=b"torch\nFloatStorage\n"):
    """`{'w': _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}`."""
    def tup(items):
        return b"(" + b"".join(items) + b"t"
    persid = tup([op_unicode("storage"), b"c" + storage, op_unicode(key), op_unicode("cpu"), op_long(numel)]) + b"Q"
    args = tup([persid, op_long(offset), tup([op_long(d) for d in size]), tup([op_long(d) for d in stride]),
                b"\x89", b"ccollections\nOrderedDict\n)R"])
    return (b"\x80\x02}(" + op_unicode("w") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R" + b"u.")


def fixed_time(name, method=zipfile.ZIP_STORED):
    """A zip entry with a fixed timestamp, so regenerated archives are byte-identical."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = method
    return info


def write_torch_zip(name, pickle_bytes, storages):
    """A zip laid out like torch.save's (stored entries under `archive/`)."""
    with zipfile.ZipFile(os.path.join(OUT, name), "w", zipfile.ZIP_STORED) as z:
        z.writestr(fixed_time("archive/data.pkl"), pickle_bytes)
        z.writestr(fixed_time("archive/byteorder"), b"little")
        for key, data in storages.items():
            z.writestr(fixed_time(f"archive/data/{key}"), data)
        z.writestr(fixed_time("archive/version"), b"3\n")


def hand_built():
    # PROTO 2; GLOBAL os.system; 'echo pwned'; TUPLE1; REDUCE; STOP
    write_torch_zip("malicious_os_system.bin", b"\x80\x02cos\nsystem\n" + op_unicode("echo pwned") + b"\x85R.", {})
    # STACK_GLOBAL spelling of builtins.eval.
    write_torch_zip("malicious_stack_global.bin",
                    b"\x80\x04" + op_unicode("builtins") + op_unicode("eval") + b"\x93" + op_unicode("1+1") + b"\x85R.", {})
    # EXT1 (the extension registry) is not a state-dict opcode.
    write_torch_zip("unknown_opcode.bin", b"\x80\x02}\x82\x01.", {})
    floats = struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)
    write_torch_zip("storage_offset_out_of_range.bin", tensor_pickle(offset=2, size=[4], stride=[1]), {"0": floats})
    write_torch_zip("lying_tensor_shape.bin", tensor_pickle(offset=0, size=[1 << 40, 1 << 40], stride=[1 << 40, 1]),
                    {"0": floats})
    write_torch_zip("lying_storage_numel.bin", tensor_pickle(offset=0, size=[4], stride=[1], numel=1 << 40),
                    {"0": floats})
    write_torch_zip("missing_storage.bin", tensor_pickle(offset=0, size=[4], stride=[1], key="7"), {"0": floats})
    # A storage key that is a path outside the archive: storages are looked up inside the ZIP only.
    write_torch_zip("storage_key_path.bin",
                    tensor_pickle(offset=0, size=[4], stride=[1], key="../../../../../../../../etc/passwd"),
                    {"0": floats})
    # A hand-built good one: exercises LONG1 and BININT in a state dict (w = [2.0, 3.0] at offset 1).
    write_torch_zip("hand_built.bin", tensor_pickle(offset=1, size=[2], stride=[1]), {"0": floats})
    record("hand_built.bin", "w", "F32", np.array([2.0, 3.0]))
    with open(os.path.join(OUT, "not_a_zip.bin"), "wb") as fh:
        fh.write(b"this is not a zip archive, nor a pickle\n" * 4)


def main():
    os.makedirs(OUT, exist_ok=True)
    keras_weights()
    mixed_types()
    unsupported_types()
    lying_hdf5()
    outside_references()
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("torch is required for the .bin fixtures (pip install torch --index-url .../cpu)")
    torch_fixtures()
    hand_built()
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1, sort_keys=True)
        fh.write("\n")
    total = 0
    for entry in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, entry))
        total += size
        print(f"{size:8d}  {entry}")
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
