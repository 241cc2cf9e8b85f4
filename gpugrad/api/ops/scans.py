"""Scans: cumsum and cumprod along an axis (TF.js's argument order and defaults), each one
primitive with a kernel of its own (kernels/templates/scan.cu): O(n) work per line, results
bitwise repeatable."""
from __future__ import annotations

import math
from typing import Any

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import axis_arg, convert, is_integer

TensorLike = Any
__all__ = ['cumprod', 'cumsum']


def _scan(op: str, api: str, x: TensorLike, axis: int, exclusive: bool, reverse: bool) -> Tensor:
    x = convert(x)
    if x.ndim == 0:
        raise ValueError(f"{api}: x must be at least rank 1 (a scalar has no axis to scan along)")
    axis = axis_arg(axis, api)
    if not is_integer(axis) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{api}: axis must be in [{-x.ndim}, {x.ndim - 1}] for a tensor of "
                         f"shape {list(x.shape)}, got {axis!r}")
    axis = int(axis) % x.ndim
    if x.dtype == dtypes.bool_:          # as TF.js: upcast to int32
        x = T.cast(x, dtypes.int32)
    shape = (math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:]))
    return T.reshape(T.scan(op, T.reshape(x, shape), bool(exclusive), bool(reverse)), x.shape)


def cumsum(x: TensorLike, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """tf.cumsum: the running sum along axis; exclusive leaves each element out of its own
    sum ([a, b, c] -> [0, a, a + b]); reverse runs from the end ([a + b + c, b + c, c])."""
    return _scan("cumsum", "cumsum", x, axis, exclusive, reverse)


def cumprod(x: TensorLike, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """tf.cumprod: the running product along axis, with cumsum's flags. Its gradient divides
    by x (as TF's does), so it is not finite where an element is exactly 0."""
    return _scan("cumprod", "cumprod", x, axis, exclusive, reverse)
