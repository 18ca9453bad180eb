#!/usr/bin/env python3
"""Writes the seeds of the structure-aware fuzz targets 5, 6 and 7 into Fuzz/seeds (see FuzzReaders.swift).

    python3 Fuzz/make_seeds.py          # needs numpy and h5py

- 5-*: u16 program length 0, then a format 1.1 container from Fixtures/files/containers, and one with a
  short program (a dimension, an encoding and a payload byte changed).
- 6-*: the pickle and storage sizes of real torch.save files in Fixtures/files/formats (the archive is
  rebuilt by the harness).
- 7-*: small HDF5 files written by libhdf5 through h5py: nested groups, f32/f16/bf16-like, chunked and
  compressed datasets, attributes, in the earliest (superblock 0, version 1 object headers) and latest
  (superblock 3, checksummed version 2 object headers) file formats.
"""
import io
import os
import struct
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")


def write(name, data):
    with open(os.path.join(SEEDS, name), "wb") as f:
        f.write(data)


def containers():
    folder = os.path.join(ROOT, "Fixtures", "files", "containers")
    for name in sorted(os.listdir(folder)):
        if name.endswith("-v1.1.cpeft"):
            data = open(os.path.join(folder, name), "rb").read()
            write(f"5-{name[:-6]}.bin", b"\x05" + struct.pack("<H", 0) + data)
            program = bytes([0, 0, 0, 3, 2, 1, 0, 5, 7, 2, 9, 9])
            write(f"5-{name[:-6]}-edited.bin", b"\x05" + struct.pack("<H", len(program)) + program + data)


def pickles():
    folder = os.path.join(ROOT, "Fixtures", "files", "formats")
    for name in ("adapter_model.bin", "linear_state_dict.bin", "nested_checkpoint.bin", "noncontiguous.bin",
                 "hand_built.bin", "malicious_os_system.bin", "unknown_opcode.bin"):
        with zipfile.ZipFile(os.path.join(folder, name)) as z:
            pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            storages = sorted((n for n in z.namelist() if n.startswith(prefix + "data/")),
                              key=lambda n: int(n.rsplit("/", 1)[1]) if n.rsplit("/", 1)[1].isdigit() else 0)
            sizes = [z.getinfo(n).file_size for n in storages][:8]
            data = z.read(pkl)
        write(f"6-{name[:-4]}.bin", b"\x06" + bytes([len(sizes)]) + b"".join(struct.pack("<I", s) for s in sizes) + data)


def hdf5():
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    for libver in ("earliest", "latest"):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w", libver=libver) as f:
            f.attrs["format"] = "residuals"
            g = f.create_group("model/layers/0")
            g.create_dataset("w", data=rng.normal(size=(4, 3)).astype("<f4"))
            g.create_dataset("b", data=rng.normal(size=(3,)).astype("<f2"))
            f.create_dataset("model/head", data=rng.normal(size=(2, 2)).astype("<f8"), chunks=(1, 2), compression="gzip")
            f.create_dataset("model/count", data=np.arange(3, dtype="<i4"))
            f["model/layers/0/w"].attrs["note"] = "x"
        write(f"7-h5py-{libver}.h5", b"\x07" + buffer.getvalue())


if __name__ == "__main__":
    os.makedirs(SEEDS, exist_ok=True)
    containers()
    pickles()
    hdf5()
