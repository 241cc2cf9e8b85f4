"""Linear algebra: matmul (with transposes and batch broadcasting), dot, outer_product, norm.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from .. import tensor as T
from ..tensor import Tensor, shape_str
from .convert import convert
from .elementwise import abs, broadcast_shapes, broadcast_to, mul, sqrt, square
from .reductions import max, sum
from .movement import reshape

TensorLike = Any
__all__ = ['dot', 'matmul', 'norm', 'outer_product']


# --- matmul ----------------------------------------------------------------------------------


def matmul(a: TensorLike, b: TensorLike, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    if isinstance(a, Tensor) != isinstance(b, Tensor):  # an array operand takes the tensor's dtype
        like = (a if isinstance(a, Tensor) else b)._node().dtype
        a, b = (convert(t, None if isinstance(t, Tensor) or not dtypes.is_float(like) else like) for t in (a, b))
    a, b = convert(a), convert(b)
    dtype = dtypes.promote(a.dtype, b.dtype)
    if not dtypes.is_float(dtype):
        dtype = dtypes.float32
    a, b = T.cast(a, dtype), T.cast(b, dtype)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matMul needs tensors of rank >= 1, got shapes {list(a.shape)} and {list(b.shape)}; "
            "use mul for scalars.")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = T.reshape(a, (1,) + a.shape)
    if squeeze_b:
        b = T.reshape(b, b.shape + (1,))
    if transpose_a:
        a = T.permute(a, tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))
    if transpose_b:
        b = T.permute(b, tuple(range(b.ndim - 2)) + (b.ndim - 1, b.ndim - 2))
    if a.shape[-1] != b.shape[-2]:
        ta, tb = str(bool(transpose_a)).lower(), str(bool(transpose_b)).lower()
        raise ValueError(
            f"Error in matMul: inner shapes ({a.shape[-1]}) and ({b.shape[-2]}) of Tensors with shapes "
            f"{shape_str(a.shape)} and {shape_str(b.shape)} and transposeA={ta} and transposeB={tb} "
            "must match.")
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    a = broadcast_to(a, batch + a.shape[-2:])
    b = broadcast_to(b, batch + b.shape[-2:])
    out = T.matmul(a, b)
    if squeeze_a or squeeze_b:
        shape = out.shape[:-2] + (() if squeeze_a else out.shape[-2:-1]) + (() if squeeze_b else out.shape[-1:])
        out = T.reshape(out, shape)
    return out


def dot(a: TensorLike, b: TensorLike) -> Tensor:
    return matmul(a, b)


def outer_product(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = convert(a), convert(b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def norm(x: TensorLike, ord: Any = "euclidean", axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    if ord in ("euclidean", "fro", 2):
        return sqrt(sum(square(x), axis, keep_dims))
    if ord == 1:
        return sum(abs(x), axis, keep_dims)
    if ord in (np.inf, "inf"):
        return max(abs(x), axis, keep_dims)
    raise ValueError(f"norm(): unsupported ord {ord!r}; use 'euclidean', 1 or inf")
