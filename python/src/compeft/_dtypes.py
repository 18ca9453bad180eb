"""Element types: the C ABI's ``compeft_dtype`` codes, their safetensors names, numpy and torch types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DType:
    """One element type."""

    code: int
    #: As safetensors spells it: "F32", "BF16", "I64", ...
    name: str
    itemsize: int
    #: The numpy type holding it (bf16 and f8: the unsigned integer of the same width, holding the bits).
    numpy: Any
    #: The torch dtype's attribute name ("bfloat16"), or None.
    torch: str | None

    @property
    def decodable(self) -> bool:
        """Whether `compeft_decode` can write this type."""
        return self.code in (1, 2, 3)


_ALL = [
    DType(1, "F32", 4, np.float32, "float32"),
    DType(2, "F16", 2, np.float16, "float16"),
    DType(3, "BF16", 2, np.uint16, "bfloat16"),
    DType(4, "F64", 8, np.float64, "float64"),
    DType(5, "I64", 8, np.int64, "int64"),
    DType(6, "I32", 4, np.int32, "int32"),
    DType(7, "I16", 2, np.int16, "int16"),
    DType(8, "I8", 1, np.int8, "int8"),
    DType(9, "U64", 8, np.uint64, "uint64"),
    DType(10, "U32", 4, np.uint32, "uint32"),
    DType(11, "U16", 2, np.uint16, "uint16"),
    DType(12, "U8", 1, np.uint8, "uint8"),
    DType(13, "BOOL", 1, np.bool_, "bool"),
    DType(14, "F8_E5M2", 1, np.uint8, "float8_e5m2"),
    DType(15, "F8_E4M3", 1, np.uint8, "float8_e4m3fn"),
]

BY_CODE = {d.code: d for d in _ALL}
BY_NAME = {d.name: d for d in _ALL}
F32, F16, BF16 = BY_CODE[1], BY_CODE[2], BY_CODE[3]

# Spellings accepted for an output type (as the command line's --dtype, and numpy's names).
_SPELLINGS = {
    "f32": F32, "float32": F32, "float": F32, "fp32": F32,
    "f16": F16, "float16": F16, "half": F16, "fp16": F16,
    "bf16": BF16, "bfloat16": BF16,
}


def is_torch_dtype(value: Any) -> bool:
    return type(value).__module__ == "torch" and type(value).__name__ == "dtype"


def output_type(value: Any) -> tuple[DType, bool]:
    """The output type for a ``dtype=`` argument, and whether it asks for a torch tensor.

    Accepts a torch dtype (``torch.bfloat16``), a numpy dtype or type (``np.float16``), or a name
    (``"bf16"``, ``"float32"``). Only float32, float16 and bfloat16 can be decoded into.
    """
    if is_torch_dtype(value):
        name = str(value).removeprefix("torch.")
        match = next((d for d in (F32, F16, BF16) if d.torch == name), None)
        if match is None:
            raise TypeError(f"compeft decodes into torch.float32, torch.float16 or torch.bfloat16, not {value}")
        return match, True
    if isinstance(value, str):
        match = _SPELLINGS.get(value.lower())
        if match is None:
            raise TypeError(f"compeft decodes into float32, float16 or bfloat16, not {value!r}")
        return match, False
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be a torch dtype, a numpy dtype or a name like 'bf16', not {value!r}") from None
    if dtype.name == "bfloat16":  # ml_dtypes' bfloat16
        return BF16, False
    if dtype == np.float32:
        return F32, False
    if dtype == np.float16:
        return F16, False
    raise TypeError(
        f"compeft decodes into float32, float16 or bfloat16, not numpy {dtype}"
        + (" (for bfloat16 bits in a uint16 array pass dtype='bfloat16')" if dtype == np.uint16 else "")
    )


def of_array(array: Any) -> tuple[DType | None, bool]:
    """The decodable type of a numpy array or torch tensor (None when it is none of them), and whether
    it is a torch tensor."""
    if type(array).__module__.startswith("torch"):
        name = str(array.dtype).removeprefix("torch.")
        return next((d for d in (F32, F16, BF16) if d.torch == name), None), True
    dtype = array.dtype
    if dtype.name == "bfloat16":
        return BF16, False
    if dtype == np.float32:
        return F32, False
    if dtype == np.float16:
        return F16, False
    return None, False
