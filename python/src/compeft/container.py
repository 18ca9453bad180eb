"""An open ``.cpeft`` container: its tensors, metadata and adapter config, and decoding one tensor at a
time into numpy arrays, torch tensors or memory you already own."""

from __future__ import annotations

import ctypes
import json
import os
import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Union

import numpy as np

from . import _dtypes, _native
from .errors import BadHandleError, BufferTooSmallError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    import torch

    Array = Union[np.ndarray, "torch.Tensor"]
else:
    Array = Any

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["Container", "TensorInfo", "open"]

_ROLES = {1: "residual", 2: "exact"}
_INITS = {1: "zero", 2: "one", 3: "base"}
_ENCODINGS = {0: "raw", 1: "ternary-bitmap", 2: "sparse-f32", 3: "ternary-gap"}


@dataclass(frozen=True)
class TensorInfo:
    """What the container's index says about one tensor.

    Attributes:
        name: the tensor's name, as in the adapter or checkpoint it came from.
        index: its position in the container (names sorted bytewise).
        file: the output file it belongs to (``adapter_model.safetensors``, a shard name).
        shape: its shape.
        dtype: its original element type, as safetensors names it (``"F32"``, ``"BF16"``, ``"I64"``).
        role: ``"residual"`` (a compressed τ) or ``"exact"`` (stored losslessly: a classifier head, a
            non-float tensor).
        init: what a residual is measured from: ``"zero"`` (LoRA factors, residual files), ``"one"``
            ((IA)³ vectors) or ``"base"`` (a full fine-tune; it decodes to τ alone).
        count: number of values.
        kept: values kept by the top-k selection (zeros included); ``count`` for exact tensors.
        nonzero: kept values that are non-zero, i.e. coded (0 for exact tensors).
        scale: every coded value of a ternary tensor is ±scale (0 for exact tensors).
        encoding: how the payload is stored: ``"raw"``, ``"ternary-bitmap"``, ``"sparse-f32"`` or
            ``"ternary-gap"`` (docs/FORMAT.md).
    """

    name: str
    index: int
    file: str
    shape: tuple[int, ...]
    dtype: str
    role: str
    init: str
    count: int
    kept: int
    nonzero: int
    scale: float
    encoding: str

    @property
    def is_float(self) -> bool:
        """Whether the tensor holds floating-point values (and so can be decoded)."""
        return self.dtype in ("F32", "F16", "BF16", "F64")

    @property
    def density(self) -> float:
        """The fraction of values that are coded (non-zero after decoding a residual), 1 for exact tensors."""
        if self.role == "exact":
            return 1.0
        return self.nonzero / self.count if self.count else 0.0


class Container:
    """An open ``.cpeft`` container. Create it with :func:`compeft.open`.

    The file is read with ``pread`` one payload at a time: opening reads only the index, and decoding a
    tensor reads only that tensor's bytes. Every method may be called from many threads at once (each
    call releases the GIL while the library works); close it when done, or use it as a context
    manager. A container truncated or damaged under an open handle raises, naming the file and tensor;
    it never crashes the process.
    """

    def __init__(self, path: PathLike) -> None:
        path = os.fspath(path)
        self._open_with(path, lambda out: _native.lib().compeft_open(_native.fspath(path), out), "compeft_open")

    def _open_with(self, name: str, opener: Callable[[Any], int], function: str) -> None:
        """Opens the handle with `opener` (a ``compeft_open*`` call given the out-pointer) and lists the
        tensors; `name` is what messages and :attr:`path` call it."""
        self._path = name
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._config: tuple[bytes | None] | None = None
        self._closed = True
        handle = _native.handle_t(0)
        _native.check(opener(ctypes.byref(handle)), function)
        self._handle = handle.value
        self._closed = False
        try:
            self._tensors = self._list_tensors()
        except BaseException:
            self.close()
            raise

    # ---- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the container. Calls in flight on other threads finish first or raise
        :class:`~compeft.errors.BadHandleError`; closing twice does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _native.check(_native.lib().compeft_close(self._handle), "compeft_close")

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._tensors)} tensors"
        return f"<compeft.Container {self._path!r} ({state})>"

    def _live_handle(self) -> int:
        if self._closed:
            raise BadHandleError(f"{self._path}: the container is closed", function="")
        return self._handle

    # ---- what it holds ------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The path it was opened from."""
        return self._path

    @property
    def tensors(self) -> Mapping[str, TensorInfo]:
        """Every tensor by name, in the container's order: shapes, dtypes, and how each is stored."""
        return self._tensors

    def __len__(self) -> int:
        return len(self._tensors)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    @property
    def metadata(self) -> dict[str, Any]:
        """The container's index as a dict (docs/FORMAT.md): the tool that wrote it, the input kind, the
        PEFT type, the compression settings and results, every tensor's entry. A new dict each time."""
        with self._lock:
            if self._metadata is None:
                raw = _native.text(self._bound("compeft_metadata_json"), "compeft_metadata_json")
                assert raw is not None
                self._metadata = json.loads(raw)
            cached = self._metadata
        return json.loads(json.dumps(cached))

    @property
    def adapter_config(self) -> dict[str, Any] | None:
        """The stored ``adapter_config.json`` of a PEFT adapter as a dict, or None for containers that are
        not PEFT adapters (residual files, full fine-tunes)."""
        raw = self.adapter_config_json
        return None if raw is None else json.loads(raw)

    @property
    def adapter_config_json(self) -> str | None:
        """The stored ``adapter_config.json``, byte for byte as in the adapter folder (or None)."""
        with self._lock:
            if self._config is None:
                self._config = (_native.text(self._bound("compeft_adapter_config"), "compeft_adapter_config", missing_ok=True),)
            raw = self._config[0]
        return None if raw is None else raw.decode("utf-8")

    def inspect(self) -> dict[str, Any]:
        """What ``compeft inspect --json`` reports: settings, sizes, and how each tensor is stored."""
        raw = _native.text(self._bound("compeft_inspect_json"), "compeft_inspect_json")
        assert raw is not None
        result: dict[str, Any] = json.loads(raw)
        return result

    def _bound(self, function: str) -> Any:
        handle = self._live_handle()
        c_function = getattr(_native.lib(), function)
        return lambda buffer, size, needed: c_function(handle, buffer, size, needed)

    def _list_tensors(self) -> Mapping[str, TensorInfo]:
        library = _native.lib()
        count = _native.size_t(0)
        _native.check(library.compeft_tensor_count(self._handle, ctypes.byref(count)), "compeft_tensor_count")
        tensors: dict[str, TensorInfo] = {}
        metadata_shapes: list[Any] | None = None
        for index in range(count.value):
            d = _native.TensorDesc()
            status = library.compeft_tensor_info(self._handle, index, ctypes.byref(d))
            if status == 6 and d.rank > _native.MAX_RANK:  # UNSUPPORTED: rank above 8; the index has the shape
                if metadata_shapes is None:
                    metadata_shapes = [t["shape"] for t in self.metadata["tensors"]]
                shape = tuple(int(x) for x in metadata_shapes[index])
            else:
                _native.check(status, "compeft_tensor_info")
                shape = tuple(int(x) for x in d.shape[: d.rank])
            name = d.name.decode("utf-8")
            dtype = _dtypes.BY_CODE.get(d.dtype)
            tensors[name] = TensorInfo(
                name=name, index=index, file=d.file.decode("utf-8"), shape=shape,
                dtype=dtype.name if dtype else f"unknown({d.dtype})", role=_ROLES.get(d.role, f"unknown({d.role})"),
                init=_INITS.get(d.init, f"unknown({d.init})"), count=int(d.count), kept=int(d.kept),
                nonzero=int(d.nonzero), scale=float(d.scale), encoding=_ENCODINGS.get(d.encoding, f"unknown({d.encoding})"),
            )
        return MappingProxyType(tensors)

    def info(self, name: str) -> TensorInfo:
        """The :class:`TensorInfo` of tensor `name`.

        Raises:
            NotFoundError: no tensor of that name (also a ``KeyError``).
        """
        try:
            return self._tensors[name]
        except KeyError:
            raise NotFoundError(f"{self._path}: no tensor named '{name}'", function="compeft_find_tensor") from None

    # ---- decoding -----------------------------------------------------------------------------------

    def decode(self, name: str, dtype: Any = None, *, out: Array | None = None) -> Array:
        """Decodes one tensor, reading only its bytes from the file.

        A residual decodes to init + τ (τ alone for a full fine-tune, whose base the container does not
        hold), computed in float32 and rounded once to the output type (to nearest, ties to even); an
        exact tensor decodes to its stored values.

        Args:
            name: the tensor's name (see :attr:`tensors`).
            dtype: the output type. A torch dtype (``torch.bfloat16``, ``torch.float16``,
                ``torch.float32``) gives a ``torch.Tensor``; a numpy type or a name (``np.float16``,
                ``"float32"``, ``"bf16"``) gives a numpy array. numpy has no bfloat16: ``"bf16"`` gives
                the bit patterns in a ``uint16`` array (an ``ml_dtypes.bfloat16`` array passed as
                ``out`` works too). None: float16 tensors as float16, other float tensors as float32,
                and non-float tensors (stored exactly) in their own type, all as numpy arrays.
            out: a C-contiguous, writable numpy array or CPU torch tensor of exactly the tensor's number
                of values (any shape), which is filled in place and returned: no allocation, no copy.
                Its type is the output type; a `dtype` that disagrees raises.

        Returns:
            The decoded values, shaped as the tensor (or `out`).

        Raises:
            NotFoundError: no tensor of that name.
            TypeError: a dtype other than float32, float16 or bfloat16.
            InvalidArgumentError: `out` has the wrong type, size or layout.
            UnsupportedError: a non-float tensor asked for as floats.
            CorruptError: the tensor's payload fails its checksum or does not decode (the message names
                the tensor).
        """
        info = self.info(name)
        if out is not None:
            return self._decode_into(info, out, dtype)
        if dtype is None:
            if not info.is_float:
                return self.exact_values(name)
            target, as_torch = (_dtypes.F16 if info.dtype == "F16" else _dtypes.F32), False
        else:
            target, as_torch = _dtypes.output_type(dtype)
        if as_torch:
            import torch

            result: Array = torch.empty(info.shape, dtype=getattr(torch, target.torch))
            pointer, nbytes = result.data_ptr(), result.numel() * target.itemsize
        else:
            result = np.empty(info.shape, dtype=target.numpy)
            pointer, nbytes = result.ctypes.data, result.nbytes
        self._decode_raw(info, target, pointer, nbytes)
        return result

    def _decode_into(self, info: TensorInfo, out: Array, dtype: Any) -> Array:
        target, pointer, nbytes = _checked_buffer(info, out, dtype, self._path, what="out")
        self._decode_raw(info, target, pointer, nbytes)
        return out

    def _decode_raw(self, info: TensorInfo, target: _dtypes.DType, pointer: int, nbytes: int) -> None:
        status = _native.lib().compeft_decode(self._live_handle(), info.index, target.code, pointer, nbytes)
        _native.check(status, "compeft_decode")

    def exact_values(self, name: str) -> np.ndarray:
        """The stored values of a tensor kept exactly (a classifier head, a step counter, ...) in its own
        type, byte for byte as in the input (bfloat16 and float8 as their bits, in unsigned integers).

        Raises:
            UnsupportedError: the tensor is a compressed residual (use :meth:`decode`).
        """
        info = self.info(name)
        dtype = _dtypes.BY_NAME.get(info.dtype)
        if dtype is None:
            raise InvalidArgumentError(f"{self._path}: tensor '{name}': unknown dtype {info.dtype}")
        result = np.empty(info.shape, dtype=np.dtype(dtype.numpy).newbyteorder("<"))
        status = _native.lib().compeft_exact_bytes(self._live_handle(), info.index, result.ctypes.data, result.nbytes)
        _native.check(status, "compeft_exact_bytes")
        return result

    def apply(self, name: str, weights: Array, factor: float = 1.0) -> None:
        """Adds ``factor × τ`` of tensor `name` into `weights` in place, touching only the positions the
        container kept: the serving path for a full fine-tune (its base weights) or an (IA)³ vector.

        Args:
            weights: a C-contiguous, writable float32, float16 or bfloat16 numpy array or CPU torch tensor
                holding exactly the tensor's number of values (for numpy bfloat16, a uint16 array of bits
                with ``dtype="bf16"``).
            factor: a finite scale. An exact tensor is not a residual: applying it (factor 1) replaces
                `weights` by its values, and any other factor raises.

        Raises:
            InvalidArgumentError: `weights` has the wrong type, size or layout; a non-finite factor.
            UnsupportedError: an exact tensor with a factor other than 1.
            CorruptError: a damaged payload (`weights` is then unchanged).
        """
        info = self.info(name)
        target, pointer, nbytes = _checked_buffer(info, weights, None, self._path, what="weights")
        status = _native.lib().compeft_apply(self._live_handle(), info.index, target.code, pointer, nbytes, float(factor))
        _native.check(status, "compeft_apply")


def _checked_buffer(info: TensorInfo, array: Any, dtype: Any, path: str, what: str) -> tuple[_dtypes.DType, int, int]:
    """(type, address, byte size) of a caller's numpy array or torch tensor, after checking that it can
    hold the tensor's values in place."""
    prefix = f"{path}: tensor '{info.name}'"
    if isinstance(array, np.ndarray):
        if not array.flags.c_contiguous:
            raise InvalidArgumentError(f"{prefix}: {what} must be C-contiguous")
        if not array.flags.writeable:
            raise InvalidArgumentError(f"{prefix}: {what} is read-only")
        size, pointer, nbytes = array.size, array.ctypes.data, array.nbytes
    elif type(array).__module__.startswith("torch") and hasattr(array, "data_ptr"):
        if array.device.type != "cpu":
            raise InvalidArgumentError(f"{prefix}: {what} is on {array.device}; compeft writes CPU memory (decode, then .to(device))")
        if not array.is_contiguous():
            raise InvalidArgumentError(f"{prefix}: {what} must be contiguous")
        size, pointer, nbytes = array.numel(), array.data_ptr(), array.numel() * array.element_size()
    else:
        raise TypeError(f"{prefix}: {what} must be a numpy array or a torch tensor, not {type(array).__name__}")
    found, _ = _dtypes.of_array(array)
    if dtype is not None:
        wanted, _ = _dtypes.output_type(dtype)
        bits_ok = wanted is _dtypes.BF16 and isinstance(array, np.ndarray) and array.dtype == np.uint16
        if found is not wanted and not bits_ok:
            raise InvalidArgumentError(f"{prefix}: {what} holds {array.dtype}, but dtype {dtype} was asked for")
        found = wanted
    if found is None:
        hint = " (pass dtype='bf16' to use a uint16 array as bfloat16 bits)" if getattr(array, "dtype", None) == np.uint16 else ""
        raise InvalidArgumentError(f"{prefix}: {what} holds {array.dtype}; use float32, float16 or bfloat16{hint}")
    if size != info.count:
        raise BufferTooSmallError(
            f"{prefix}: {what} holds {size} values, the tensor has {info.count} (shape {list(info.shape)})"
        ) if size < info.count else InvalidArgumentError(
            f"{prefix}: {what} holds {size} values, the tensor has exactly {info.count} (shape {list(info.shape)}): is it the right tensor?"
        )
    return found, pointer, nbytes


def open(path: PathLike) -> Container:  # noqa: A001 - the package's entry point, as the issue names it
    """Opens a ``.cpeft`` container (checks its preamble, trailer and index; payloads are checked when
    they are read).

    Use it as a context manager, or call :meth:`Container.close`::

        with compeft.open("expert.cpeft") as c:
            w = c.decode("base_model.model....lora_A.weight", dtype=torch.bfloat16)

    Raises:
        CompeftIOError: the file is missing, a directory, or unreadable (also an ``OSError``).
        CorruptError: not a container, or its index is damaged.
        UnsupportedError: a newer format version.
    """
    return Container(path)
