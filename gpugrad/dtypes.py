"""The four dtypes gpugrad supports, their promotion rules and CUDA spellings."""
from __future__ import annotations

from typing import Any

import numpy as np

float32 = "float32"
float64 = "float64"
int32 = "int32"
bool_ = "bool"

DTYPES = (float32, float64, int32, bool_)
FLOATS = frozenset((float32, float64))
NUMPY = {d: np.dtype(d) for d in DTYPES}
CUDA = {float32: "float", float64: "double", int32: "int", bool_: "bool"}
_RANK = {bool_: 0, int32: 1, float32: 2, float64: 3}

# numpy dtypes that map onto a supported one without surprise.
_FROM_NUMPY = {
    "float32": float32, "float64": float32, "float16": float32,
    "int8": int32, "int16": int32, "int32": int32, "int64": int32,
    "uint8": int32, "uint16": int32, "uint32": int32, "uint64": int32,
    "bool": bool_,
}


def canonical(dtype: Any) -> str:
    """Turn a user's dtype (string, numpy dtype, Python type) into one of DTYPES."""
    if dtype in _RANK:
        return dtype
    if dtype is float:
        return float32
    if dtype is int:
        return int32
    if dtype is bool:
        return bool_
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name in _RANK:
        return name
    raise TypeError(
        f"Unsupported dtype {dtype!r}: gpugrad tensors are one of {', '.join(DTYPES)}. "
        "Cast the data to one of these first.")


def from_numpy(npdtype: np.dtype) -> str:
    """The dtype a numpy array becomes; float64 data becomes float32, as in TF.js."""
    kind = npdtype.name
    if kind in _FROM_NUMPY:
        return _FROM_NUMPY[kind]
    raise TypeError(
        f"Unsupported dtype {npdtype.name!r} (kind {npdtype.kind!r}): gpugrad tensors hold "
        f"{', '.join(DTYPES)}; complex, object and string data cannot be converted.")


def promote(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


def grad_dtype(dtype: str) -> str:
    """Gradients are float: float64 stays, everything else is float32 (as in TF.js)."""
    return dtype if dtype in FLOATS else float32
