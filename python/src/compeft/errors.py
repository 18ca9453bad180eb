"""The exceptions compeft raises: one class per status code of the C ABI (include/compeft.h).

Every error carries the library's message (which names the file and, where it applies, the tensor) and
the status code, so code that catches :class:`CompeftError` can tell a damaged container from a missing
file without parsing text. Each class also derives from the matching built-in exception
(``ValueError``, ``KeyError``, ``OSError``) so ordinary ``except`` clauses work too.
"""

from __future__ import annotations

__all__ = [
    "CompeftError",
    "InvalidArgumentError",
    "BadHandleError",
    "NotFoundError",
    "BufferTooSmallError",
    "CorruptError",
    "UnsupportedError",
    "CompeftIOError",
]


class CompeftError(Exception):
    """A call into libcompeft failed.

    Attributes:
        message: what went wrong, in the library's words (file, tensor, expected versus found).
        status: the ``compeft_status`` code (``COMPEFT_ERR_*``), an ``int``.
        code: the status's name, e.g. ``"COMPEFT_ERR_CORRUPT"``.
        function: the C function that failed, e.g. ``"compeft_decode"``.
    """

    status: int = -1
    code: str = "COMPEFT_UNKNOWN_STATUS"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, function: str = "") -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.function = function

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"


class InvalidArgumentError(CompeftError, ValueError):
    """A bad argument: an unknown dtype or option, a value out of range, an index out of range."""

    status, code = 1, "COMPEFT_ERR_INVALID_ARGUMENT"


class BadHandleError(CompeftError, ValueError):
    """The container has been closed."""

    status, code = 2, "COMPEFT_ERR_BAD_HANDLE"


class NotFoundError(CompeftError, KeyError):
    """No tensor of that name, or no ``adapter_config.json`` in the container."""

    status, code = 3, "COMPEFT_ERR_NOT_FOUND"


class BufferTooSmallError(CompeftError, ValueError):
    """The output buffer is smaller than the tensor."""

    status, code = 4, "COMPEFT_ERR_BUFFER_TOO_SMALL"


class CorruptError(CompeftError):
    """Not a container, or damaged: a checksum mismatch or a payload that does not decode (the message
    names the tensor)."""

    status, code = 5, "COMPEFT_ERR_CORRUPT"


class UnsupportedError(CompeftError):
    """Valid but not supported: a newer format version, decoding a non-float tensor as floats, an output
    dtype other than float32/float16/bfloat16."""

    status, code = 6, "COMPEFT_ERR_UNSUPPORTED"


class CompeftIOError(CompeftError, OSError):
    """A file cannot be read or written: missing, a directory, no permission, an output that exists
    (pass ``force=True``) or would overwrite an input."""

    status, code = 7, "COMPEFT_ERR_IO"


BY_STATUS: dict[int, type[CompeftError]] = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        BadHandleError,
        NotFoundError,
        BufferTooSmallError,
        CorruptError,
        UnsupportedError,
        CompeftIOError,
    )
}
