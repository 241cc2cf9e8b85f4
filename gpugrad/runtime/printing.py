"""Tensor pretty-printing that reproduces TensorFlow.js 4.22 ``Tensor.toString``.

Mirrors tfjs-core/src/tensor_format.ts, quirks included, so that ``print()``
output can be compared byte for byte with TF.js.
"""

from __future__ import annotations

import decimal
import math
from typing import List, Optional, Sequence

import numpy as np

# TF.js constants: an axis longer than _LIMIT shows only _EDGE entries per end.
_LIMIT = 20
_EDGE = 3
_FIXED_DIGITS = 7  # TF.js calls it FORMAT_NUM_SIG_DIGITS, but it is toFixed(7)

_STEP = decimal.Decimal(1).scaleb(-_FIXED_DIGITS)
# Values below 1e21 with 7 decimals need up to 28 digits; leave headroom.
_CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_UP)


def js_number_to_string(x: float) -> str:
    """JavaScript ``Number.prototype.toString()`` for a double."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"  # JS prints -0 as "0" too
    if x < 0:
        return "-" + js_number_to_string(-x)
    # Python's repr yields the same shortest round-trip digits as JS; only
    # the layout differs, so extract digits and the decimal point position.
    mantissa_str, _, exp_str = repr(x).partition("e")
    int_part, _, frac_part = mantissa_str.partition(".")
    digits = int_part + frac_part
    n = len(int_part) + int(exp_str or 0)  # value = 0.<digits> * 10**n
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def _to_fixed_round_trip(x: float) -> str:
    """JS ``parseFloat(x.toFixed(7)).toString()``."""
    if not math.isfinite(x) or abs(x) >= 1e21:
        # toFixed falls back to toString here, which parseFloat round-trips.
        return js_number_to_string(x)
    # toFixed rounds the exact binary value half away from zero, while '%.7f'
    # rounds exact ties to even. An exact tie at the 8th decimal means
    # x = odd / 2**8, so only those values need the slow exact path.
    if x.as_integer_ratio()[1] == 256:
        fixed = str(_CTX.quantize(decimal.Decimal(x), _STEP))
    else:
        fixed = "%.7f" % x
        short = fixed.rstrip("0").rstrip(".")
        # Fast path: at most 15 significant digits survive parseFloat and
        # toString unchanged, and JS uses plain notation at or above 1e-6.
        if len(short) <= 16 and abs(x) >= 1e-6:
            return short
    return js_number_to_string(float(fixed))


def _element_str(v: object, dtype: str) -> str:
    if dtype == "bool":
        return "true" if v else "false"
    if dtype == "int32":
        return str(int(v))  # toFixed on an int32 never changes its digits
    return _to_fixed_round_trip(float(v))


def _scalar_str(v: object, dtype: str) -> str:
    # Rank 0 uses plain toString (no toFixed rounding), unlike rank >= 1.
    if dtype == "bool":
        return "true" if v else "false"
    if dtype == "int32":
        return str(int(v))
    return js_number_to_string(float(v))


def _shown_indices(size: int) -> List[Optional[int]]:
    """Indices displayed along an axis; None marks the ellipsis."""
    if size > _LIMIT:
        return [*range(_EDGE), None, *range(size - _EDGE, size)]
    return list(range(size))


def _sub_tensor_lines(
    strs: Sequence[Optional[str]],
    offset: int,
    shape: Sequence[int],
    pad: Sequence[int],
    is_last: bool,
) -> List[str]:
    """Port of TF.js ``subTensorToString`` for rank >= 1 (flat row-major data)."""
    size = shape[0]
    rank = len(shape)
    if rank == 1:
        cells = [
            "..." if i is None else strs[offset + i].ljust(pad[i] if pad else 0)
            for i in _shown_indices(size)
        ]
        return ["[" + ", ".join(cells) + "]"]

    stride = math.prod(shape[1:])
    lines: List[str] = []
    for i in _shown_indices(size):
        if i is None:
            lines.append("...")
        else:
            lines.extend(
                _sub_tensor_lines(
                    strs, offset + i * stride, shape[1:], pad, i == size - 1
                )
            )
    sep = "," if rank == 2 else ""
    # With size 0 this creates the only line; with size 1 the first and last
    # line are the same, giving TF.js's " [[...],]" quirk.
    lines[:1] = ["[" + (lines[0] + sep if size > 0 else "")]
    for i in range(1, len(lines) - 1):
        lines[i] = " " + lines[i] + sep
    # Blank lines between blocks are embedded newlines, so they get no indent.
    tail = "" if is_last else "," + "\n" * (rank - 1)
    lines[-1] = " " + lines[-1] + "]" + tail
    return lines


def format_tensor(values: np.ndarray, dtype: str, verbose: bool = False) -> str:
    """Return what TF.js 4.22 ``tensor.toString(verbose)`` returns.

    ``values`` holds the tensor's values with the tensor's shape; ``dtype`` is
    'float32', 'float64', 'int32' or 'bool'.
    """
    arr = np.asarray(values)
    shape = list(arr.shape)
    flat = arr.reshape(-1)
    rank = len(shape)

    if rank == 0:
        value_lines = [_scalar_str(flat[0], dtype)]
    else:
        strs: List[Optional[str]]
        pad: List[int] = []
        if rank == 1:
            # TF.js pads nothing in 1-D, so only the shown values are needed.
            strs = [None] * flat.size
            for i in _shown_indices(flat.size):
                if i is not None:
                    strs[i] = _element_str(flat[i], dtype)
        else:
            # Column widths are measured over every value, shown or not.
            strs = [_element_str(v, dtype) for v in flat.tolist()]
            lengths = np.fromiter(map(len, strs), dtype=np.int64, count=len(strs))
            cols = shape[-1]
            pad = lengths.reshape(-1, cols).max(axis=0).tolist() if strs else []
        value_lines = _sub_tensor_lines(strs, 0, shape, pad, True)

    lines = ["Tensor"]
    if verbose:
        lines += [
            f"  dtype: {dtype}",
            f"  rank: {rank}",
            f"  shape: [{','.join(map(str, shape))}]",
            "  values:",
        ]
    lines.append("\n".join("    " + line for line in value_lines))
    return "\n".join(lines)
