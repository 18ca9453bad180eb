"""What the command line's compress, decompress, merge, inspect and verify do, as functions. Each returns
the command's ``--json`` report as a dict (README, "JSON reports"); arguments and defaults are the
command's options, in Python spelling."""

from __future__ import annotations

import ctypes
import os
from typing import Any, Sequence, Union

from . import _native
from .container import open as open_container

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["compress", "decompress", "merge", "inspect", "verify"]


def compress(
    input: PathLike,
    output: PathLike,
    *,
    density: float = 20,
    alpha: float | str = "auto",
    method: str = "compeft",
    scope: str | None = None,
    scale: str | None = None,
    lora_gauge: str | None = None,
    base: PathLike | None = None,
    compress_all: bool = False,
    init: str | None = None,
    threads: int | None = None,
    zstd_level: int = 19,
    force: bool = False,
) -> dict[str, Any]:
    """Compresses an adapter or fine-tune into a ``.cpeft`` container, as ``compeft compress`` does.

    Args:
        input: a PEFT adapter folder, a ``.safetensors`` file of residuals, a sharded checkpoint, an HDF5
            file, a ``torch.save`` file, or with `base` a full fine-tune.
        output: the container to write (atomically: nothing appears unless it succeeds).
        density: K, the percentage of values kept (0 < K ≤ 100).
        alpha: the scale multiplier α, or ``"auto"`` for the norm-preserving scale.
        method: ``"compeft"`` (±α·σ), ``"stc"`` (±α·mean|kept|) or ``"prune"`` (kept values unchanged).
        scope: ``"global"`` (one threshold, the paper's) or ``"tensor"``; ``None``: the default for the kind of
            expert, as ``compeft compress`` (``"tensor"`` for a full fine-tune, ``"global"`` otherwise).
        scale: which values share a scale, ``"global"``, ``"tensor"`` or ``"module"`` (per LoRA module,
            norm-preserving on B·A); ``None``: ``"module"`` for LoRA with α auto, else the scope's.
        lora_gauge: the gauge LoRA factors are stored in, ``"trained"``, ``"svd"``, ``"svd-dct"`` or ``"auto"``;
            ``None``: ``"auto"`` with the module scale, else ``"trained"``. The paper's rule, compeft's default
            before per-expert defaults: ``scope="global", scale="global", lora_gauge="trained"``.
        base: the base model of a full fine-tune (τ = fine-tuned − base).
        compress_all: also compress adapter tensors that are not residuals (modules_to_save).
        init: override what residuals are measured from: ``"zero"`` or ``"one"``.
        threads: worker threads (default: all cores); the bytes written do not depend on it.
        zstd_level: zstd level of the payloads (1–22).
        force: overwrite an existing output.

    Returns:
        The ``compeft compress --json`` report: sizes, ratio, compression settings and results, and
        every tensor's entry.

    Raises:
        InvalidArgumentError: an option out of range. CompeftIOError: a missing input, an existing
        output without `force`, an output that would overwrite an input. CorruptError or
        UnsupportedError: an input compeft cannot read.
    """
    options = _native.options({
        "density": density, "alpha": alpha, "method": method, "scope": scope, "scale": scale,
        "lora_gauge": lora_gauge, "base": os.fspath(base) if base is not None else None, "compress_all": compress_all, "init": init,
        "threads": threads, "zstd_level": zstd_level, "force": force,
    })
    library = _native.lib()
    return _native.report(
        lambda out: library.compeft_compress(_native.fspath(input), _native.fspath(output), options, out), "compeft_compress"
    )


def decompress(
    input: PathLike,
    output: PathLike,
    *,
    dtype: str | None = None,
    format: str | None = None,
    base: PathLike | None = None,
    threads: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Writes a container back out as ``compeft decompress`` does. The output's name decides what is
    written: ``NAME.safetensors`` one safetensors file with every tensor, ``NAME.h5`` or ``NAME.hdf5`` one
    HDF5 file, any other name a folder — a PEFT adapter folder for an adapter (``PeftModel.from_pretrained``
    loads it as it is), else the original files or shards.

    Args:
        dtype: write every float tensor as ``"f32"``, ``"f16"`` or ``"bf16"`` (default: its own type).
        format: ``"safetensors"`` or ``"hdf5"``, only as a check: one that disagrees with the output's
            name raises ``InvalidArgumentError``.
        base: a full fine-tune's base model: write the fine-tuned weights instead of τ.
        threads: tensors decoded at once (default: all cores).
        force: replace an existing output.

    Returns:
        The ``compeft decompress --json`` report.
    """
    options = _native.options({
        "dtype": dtype, "format": format, "base": os.fspath(base) if base is not None else None,
        "threads": threads, "force": force,
    })
    library = _native.lib()
    return _native.report(
        lambda out: library.compeft_decompress(_native.fspath(input), _native.fspath(output), options, out),
        "compeft_decompress",
    )


def merge(
    inputs: Sequence[PathLike],
    output: PathLike,
    *,
    method: str = "task-arithmetic",
    density: float | None = None,
    weights: Sequence[float] | None = None,
    lambda_: float = 1.0,
    base: PathLike | None = None,
    election: str | None = None,
    seed: int | None = None,
    scope: str | None = None,
    lora: str | None = None,
    rank: int | None = None,
    out_density: float | None = None,
    out_alpha: float | str | None = None,
    expand: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Merges adapters or fine-tunes into one, as ``compeft merge`` does.

    Args:
        inputs: PEFT adapter folders, ``.safetensors`` files or checkpoints, ``.cpeft`` containers, all
            of one kind with the same tensors.
        output: chosen by its name: a ``.cpeft`` container (compressed with `out_density` and
            `out_alpha`), a ``.safetensors`` file, a ``.h5``/``.hdf5`` file, or any other name a folder (a
            PEFT adapter folder for adapters).
        method: ``"task-arithmetic"``, ``"ties"``, ``"dare-linear"``, ``"dare-ties"`` or
            ``"magnitude-prune"``.
        density: the percentage each expert keeps (ties, dare-*, magnitude-prune; default 20).
        weights: one weight per input (default 1 each).
        lambda_: the scale of the merged residual (``--lambda``).
        base: the base model of full fine-tunes.
        election: TIES sign election, ``"total"`` (default) or ``"frequency"`` (ties, dare-ties).
        seed: DARE's seed (dare-*; default 0); a seed gives the same bytes.
        scope: top-k per ``"tensor"`` (PEFT's, the default) or ``"global"`` per expert (ties, magnitude-prune).
        lora: ``"exact"`` (the default; merges ΔW = s·B·A) or ``"factors"`` (PEFT's per-factor combination).

    An option the method does not use (`density` for task arithmetic, `election` outside ties and
    dare-ties, `seed` outside dare-*, `scope` outside ties and magnitude-prune) raises
    ``InvalidArgumentError`` naming the method, as the command line refuses the flag.
        rank: the rank of LoRA modules factored by SVD.
        out_density, out_alpha: a ``.cpeft`` output's compression.
        expand: expand compressed experts to floats even where the ternary path applies.
        force: replace an existing output.

    Returns:
        The ``compeft merge --json`` report.
    """
    paths = [_native.fspath(p) for p in inputs]
    array = (ctypes.c_char_p * max(len(paths), 1))(*paths)
    options = _native.options({
        "method": method, "density": density, "weights": list(weights) if weights is not None else None,
        "lambda": lambda_, "base": os.fspath(base) if base is not None else None, "election": election, "seed": seed,
        "scope": scope, "lora": lora, "rank": rank, "out_density": out_density, "out_alpha": out_alpha,
        "expand": expand, "force": force,
    })
    library = _native.lib()
    return _native.report(
        lambda out: library.compeft_merge(array, len(paths), _native.fspath(output), options, out), "compeft_merge"
    )


def inspect(path: PathLike) -> dict[str, Any]:
    """What ``compeft inspect --json`` reports about a container: its settings, sizes, and how each
    tensor is stored.

    Raises:
        CompeftIOError, CorruptError, UnsupportedError: as :func:`compeft.open`.
    """
    with open_container(path) as c:
        return c.inspect()


def verify(path: PathLike) -> dict[str, Any]:
    """Checks every checksum of a container and that every payload decodes, as ``compeft verify`` does.

    Returns:
        ``{"file", "ok", "checked", "problems"}``: ``ok`` is False, with each problem named (file and
        tensor), for a damaged container or a file that is not one. It does not raise for those.

    Raises:
        CompeftIOError: the file cannot be read.
    """
    library = _native.lib()
    return _native.report(lambda out: library.compeft_verify(_native.fspath(path), out), "compeft_verify")
