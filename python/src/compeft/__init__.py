"""compeft: load ComPEFT-compressed experts (``.cpeft`` containers) into numpy, PyTorch and PEFT, and
compress, merge, inspect and verify them, through libcompeft's C ABI.

::

    import compeft, torch
    with compeft.open("expert.cpeft") as c:               # reads the index only
        c.adapter_config; c.metadata; c.tensors           # config, index, every tensor's entry
        w = c.decode(name, dtype=torch.bfloat16)          # one tensor: reads only its bytes
    sd = compeft.load_state_dict("expert.cpeft", dtype=torch.bfloat16)
    model = compeft.load_peft(base_model, "expert.cpeft", adapter_name="sentiment")
    compeft.compress("my_adapter_dir", "expert.cpeft", density=10)
    with compeft.open_remote("localhost:5000/experts/sentiment:v1") as c:   # an expert on an OCI registry
        w = c.decode(name)                                # fetches only this tensor's bytes (HTTP Range)

numpy is the only dependency: torch and peft are imported by the functions that need them. Every
failure raises a :class:`CompeftError` subclass carrying the library's message and status code.
"""

from ._version import __version__
from .container import Container, TensorInfo, open
from .errors import (
    BadHandleError,
    BufferTooSmallError,
    CompeftError,
    CompeftIOError,
    CorruptError,
    InvalidArgumentError,
    NotFoundError,
    UnsupportedError,
)
from ._torch import apply, load_peft, load_state_dict
from .tools import compress, decompress, inspect, merge, verify
from .remote import RemoteContainer, open_remote

__all__ = [
    "__version__",
    "open",
    "open_remote",
    "Container",
    "RemoteContainer",
    "TensorInfo",
    "load_state_dict",
    "load_peft",
    "apply",
    "compress",
    "decompress",
    "merge",
    "inspect",
    "verify",
    "library_version",
    "CompeftError",
    "InvalidArgumentError",
    "BadHandleError",
    "NotFoundError",
    "BufferTooSmallError",
    "CorruptError",
    "UnsupportedError",
    "CompeftIOError",
]


def library_version() -> str:
    """The version of the libcompeft this package loaded (``compeft_version()``)."""
    from . import _native

    return _native.lib().compeft_version().decode()
