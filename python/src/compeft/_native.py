"""The C ABI of libcompeft (include/compeft.h) through ctypes: the library, its signatures, and the
conversion of status codes into exceptions. Nothing here knows numpy or torch.

The library is the ``libcompeft.so`` shipped inside this package (one self-contained file: the Swift
runtime is linked into it), or the file named by the environment variable ``COMPEFT_LIBRARY`` (a
development build such as ``.build/debug/libCompeftC.so``).

ctypes releases the GIL for the duration of every call into a ``CDLL``, so decoding on many Python
threads runs in parallel; the library's handles are safe to share between threads.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from typing import Any, Callable

from .errors import BY_STATUS, CompeftError

#: The interface version this package speaks (``COMPEFT_ABI_VERSION``).
ABI_VERSION = 2
MAX_RANK = 8

OK = 0
ERR_NOT_FOUND = 3
ERR_BUFFER_TOO_SMALL = 4

handle_t = ctypes.c_uint64
status_t = ctypes.c_int32
size_t = ctypes.c_size_t
char_pp = ctypes.POINTER(ctypes.c_char_p)


class TensorDesc(ctypes.Structure):
    """``compeft_tensor_desc``: 128 bytes, no padding."""

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

# Reports are returned as library-allocated strings: declared as c_void_p so ctypes does not copy and
# lose the pointer, then read and freed with compeft_string_free.
_report_out = ctypes.POINTER(ctypes.c_void_p)

_SIGNATURES: dict[str, tuple[list[Any], Any]] = {
    "compeft_version": ([], ctypes.c_char_p),
    "compeft_abi_version": ([], ctypes.c_uint32),
    "compeft_last_error": ([], ctypes.c_char_p),
    "compeft_status_name": ([status_t], ctypes.c_char_p),
    "compeft_open": ([ctypes.c_char_p, ctypes.POINTER(handle_t)], status_t),
    "compeft_close": ([handle_t], status_t),
    "compeft_tensor_count": ([handle_t, ctypes.POINTER(size_t)], status_t),
    "compeft_tensor_info": ([handle_t, size_t, ctypes.POINTER(TensorDesc)], status_t),
    "compeft_find_tensor": ([handle_t, ctypes.c_char_p, ctypes.POINTER(size_t)], status_t),
    "compeft_decode": ([handle_t, size_t, ctypes.c_int32, ctypes.c_void_p, size_t], status_t),
    "compeft_apply": ([handle_t, size_t, ctypes.c_int32, ctypes.c_void_p, size_t, ctypes.c_float], status_t),
    "compeft_metadata_json": ([handle_t, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)], status_t),
    "compeft_adapter_config": ([handle_t, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)], status_t),
    "compeft_string_free": ([ctypes.c_void_p], None),
    "compeft_compress": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _report_out], status_t),
    "compeft_decompress": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, _report_out], status_t),
    "compeft_merge": ([char_pp, size_t, ctypes.c_char_p, ctypes.c_char_p, _report_out], status_t),
    "compeft_inspect_json": ([handle_t, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)], status_t),
    "compeft_verify": ([ctypes.c_char_p, _report_out], status_t),
    "compeft_exact_bytes": ([handle_t, size_t, ctypes.c_void_p, size_t], status_t),
    "compeft_open_reader": ([ctypes.c_void_p, ctypes.POINTER(handle_t)], status_t),
}

_lock = threading.Lock()
_library: ctypes.CDLL | None = None


def library_path() -> str:
    """The shared library this package loads: ``$COMPEFT_LIBRARY``, else the one beside this file."""
    override = os.environ.get("COMPEFT_LIBRARY")
    if override:
        return override
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libcompeft.so")


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use, once per process)."""
    global _library
    if _library is not None:
        return _library
    with _lock:
        if _library is None:
            path = library_path()
            if not os.path.exists(path):
                raise ImportError(
                    f"compeft: the native library {path} is missing; build the package with "
                    "scripts/build-python-wheel.sh (or set COMPEFT_LIBRARY to a libcompeft.so)"
                )
            loaded = ctypes.CDLL(path)
            for name, (argtypes, restype) in _SIGNATURES.items():
                try:
                    function = getattr(loaded, name)
                except AttributeError:
                    raise ImportError(f"compeft: {path} has no {name}: it is older than this package (ABI {ABI_VERSION})") from None
                function.argtypes = argtypes
                function.restype = restype
            version = loaded.compeft_abi_version()
            if version < ABI_VERSION:
                raise ImportError(f"compeft: {path} speaks ABI version {version}; this package needs {ABI_VERSION} or later")
            _library = loaded
    return _library


def error(status: int, function: str) -> CompeftError:
    """The exception for a failed call, with this thread's last error message."""
    library = lib()
    message = (library.compeft_last_error() or b"").decode("utf-8", "replace")
    code = (library.compeft_status_name(status) or b"").decode()
    cls = BY_STATUS.get(status, CompeftError)
    return cls(message or code, status=status, code=code, function=function)


def check(status: int, function: str) -> None:
    """Raises the exception for `status` unless it is ``COMPEFT_OK``."""
    if status != OK:
        raise error(status, function)


def text(call: Callable[[Any, int, Any], int], function: str, missing_ok: bool = False) -> bytes | None:
    """The NUL-terminated text a (buffer, size, &needed) function returns, without the NUL.

    Asks for the size first; retries if the text grew in between (it never does for one handle).
    """
    needed = size_t(0)
    status = call(None, 0, ctypes.byref(needed))
    while True:
        if status == ERR_NOT_FOUND and missing_ok:
            return None
        if status not in (OK, ERR_BUFFER_TOO_SMALL):
            raise error(status, function)
        buffer = ctypes.create_string_buffer(max(needed.value, 1))
        status = call(buffer, len(buffer), ctypes.byref(needed))
        if status == OK:
            return buffer.raw[: needed.value - 1]


def report(call: Callable[[Any], int], function: str) -> dict[str, Any]:
    """Runs a function that hands over a report string, and returns the report parsed."""
    out = ctypes.c_void_p(None)
    status = call(ctypes.byref(out))
    check(status, function)
    if not out.value:
        raise CompeftError(f"{function} succeeded but returned no report", function=function)
    try:
        raw = ctypes.string_at(out.value)
    finally:
        lib().compeft_string_free(out)
    result: dict[str, Any] = json.loads(raw.decode("utf-8"))
    return result


def fspath(path: str | os.PathLike[str]) -> bytes:
    """A path argument as the C side wants it (bytes, file system encoding)."""
    return os.fsencode(os.fspath(path))


def options(values: dict[str, Any]) -> bytes:
    """An ``options_json`` argument: the keys whose value is not None, as a JSON object."""
    return json.dumps({k: v for k, v in values.items() if v is not None}).encode("utf-8")
