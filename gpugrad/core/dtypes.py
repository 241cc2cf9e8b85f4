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


_LIMITS = {int32: (-2**31, 2**31 - 1), float32: (-float(np.finfo(np.float32).max), float(np.finfo(np.float32).max)),
           float64: (-float(np.finfo(np.float64).max), float(np.finfo(np.float64).max))}


def _out_of_range(value: Any, dtype: str) -> bool:
    lo, hi = _LIMITS[dtype]
    if dtype == int32 and isinstance(value, float):
        # a float becomes an int32 by truncation toward zero; NaN and inf have no int32 value
        return not (lo - 1 < value < hi + 1)
    return not (lo <= value <= hi)


def check_fits(data: Any, dtype: str, api: str = "tensor") -> None:
    """Raise when numeric data (an array, possibly of Python ints, or a scalar) has a value
    that ``dtype`` cannot hold. numpy's conversions wrap integers without a word (int64
    2**33 + 5 becomes 5, uint32 4e9 becomes negative), which turns a user's data into
    different numbers; an error names the value instead."""
    if dtype == bool_:
        return
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    kind = data.dtype.kind
    if kind == "O":           # Python ints beyond int64 (numpy keeps them as objects)
        values = [v for v in data.reshape(-1).tolist() if not isinstance(v, bool)]
    elif kind not in "iuf" or (dtype != int32 and kind != "f") or data.size == 0:
        return                # every int64/uint64 is a finite float32/float64 value
    elif kind == "f" and dtype != int32:
        return                # float narrowing rounds (to inf when too large), as in TF.js
    elif kind in "iu" and np.can_cast(data.dtype, np.int32):
        return
    else:
        lo, hi = data.min().item(), data.max().item()
        if not (_out_of_range(lo, dtype) or _out_of_range(hi, dtype)) and lo == lo and hi == hi:
            return
        flat = data.reshape(-1)
        lo, hi = _LIMITS[dtype]
        if kind == "f":
            lo, hi = lo - 1, hi + 1
            bad = (flat <= lo) | (flat >= hi) | (flat != flat)
        else:
            bad = (flat < lo) | (flat > hi)
        values = [flat[bad][0].item()]
    for v in values:
        if isinstance(v, (int, float)) and (v != v or _out_of_range(v, dtype)):
            lo, hi = _LIMITS[dtype]
            span = f"[{lo}, {hi}]" if dtype == int32 else f"[{lo:.7g}, {hi:.7g}]"
            fix = {int32: "use dtype='float32' or 'float64' for such values",
                   float32: "use dtype='float64'"}.get(dtype, "scale the data")
            shown = repr(v) if len(repr(v)) <= 40 else f"{repr(v)[:12]}... ({len(repr(v))} digits)"
            raise ValueError(
                f"{api}(): the value {shown} does not fit in {dtype}, whose range is {span}; "
                f"converting it would silently give a different number. Bring the data into "
                f"range or {fix}.")
