"""Reductions over axes (sum, max, prod, min, mean, logsumexp, any, all, argmax/argmin), top_k and
stop_gradient.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpugrad.core.caches import Table
from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.nodes import KIND_REDUCE, elementwise_op
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import axis_arg, cast, convert
from gpugrad.api.ops.elementwise import add, div, equal, exp, greater, is_finite, log, logical_not, neg, sub, where

TensorLike = Any
__all__ = ['all', 'any', 'argmax', 'argmin', 'logsumexp', 'max', 'mean', 'min', 'normalize_axes', 'prod', 'stop_gradient', 'sum']


# --- axes and reductions -------------------------------------------------------------------


def normalize_axes(axis: Any, rank: int, api: str = "axis") -> tuple:
    """TF.js axis rules: None means all axes; negatives count from the end."""
    if axis is None:
        return tuple(range(rank))
    if axis.__class__ is int:   # (sum(x, -1) in f on every call: the checked answer, kept)
        found = _one_axis.get((axis, rank))
        if found is not None:
            return found
        if -rank <= axis < rank:
            found = (axis % rank,)
            _one_axis.put((axis, rank), found)
            return found
    axis = axis_arg(axis, api)
    axes = [axis] if isinstance(axis, int) else axis
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(
                f"All values in axis param must be in range [-{rank}, {rank}) but got axis {a}")
        out.append(int(a) % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"Duplicate axes in {axis!r}: each axis may appear once.")
    return tuple(sorted(out))


_one_axis = Table("normalized int axes", 1024)   # (an int axis, rank) -> its normalized axes


def _drop_axes(x: Tensor, axes: tuple, keep_dims: bool) -> Tensor:
    if keep_dims:
        return x
    return T.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


_ALL_AXES = [tuple(range(n)) for n in range(33)]
_ONES = [(1,) * n for n in range(33)]


def _reduction(op: str, x: Tensor, axis: Any, keep_dims: bool) -> Tensor:
    axes = normalize_axes(axis, x.ndim, op) if not (axis is None and x.ndim == 0) else ()
    if x.dtype == dtypes.bool_ and op in ("sum", "prod"):
        x = T.cast(x, dtypes.int32)
    return _drop_axes(T.reduce(op, x, axes), axes, keep_dims)


def _reduction_op(op: str, doc: str):
    """The public reduction op: its common case first (in C where the node is compiled,
    nodes.elementwise_op), then _reduction."""
    floats = dtypes.FLOATS

    def fn(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
        if x.__class__ is not Tensor:
            x = convert(x)
        if axis is None and not keep_dims and x.dtype in floats and 0 < len(x.shape) <= 32:
            # the common case, kept cheap (one call: it is in most f): a float tensor reduced
            # to a scalar, as T.reduce and T.reshape make it, without their general checks
            n = len(x.shape)
            return Tensor("reshape", (Tensor(op, (x,), _ALL_AXES[n], _ONES[n], x.dtype),), (), (), x.dtype)
        return _reduction(op, x, axis, keep_dims)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return elementwise_op(fn, op, 1, False, True, Tensor, KIND_REDUCE, (tuple(_ALL_AXES), tuple(_ONES)))


sum = _reduction_op(  # noqa: A001
    "sum", "The sum over the axes (all by default), as tf.sum; keep_dims keeps them as 1.")
max = _reduction_op(  # noqa: A001
    "max", "The maximum over the axes (all by default), as tf.max; keep_dims keeps them as 1.")
prod = _reduction_op(
    "prod", "The product over the axes (all by default), as tf.prod; keep_dims keeps them as 1.")


def min(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    return neg(max(neg(x), axis, keep_dims))


def mean(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    axes = normalize_axes(axis, x.ndim, "mean") if not (axis is None and x.ndim == 0) else ()
    count = math.prod(x.shape[a] for a in axes)
    total = sum(cast(x, dtypes.grad_dtype(x.dtype)), axis, keep_dims)
    return div(total, count) if count != 1 else total


def _arg_reduction(x: TensorLike, axis: Any, negate: bool) -> Tensor:
    x = convert(x)
    if x.ndim == 0:
        raise ValueError("argMax/argMin need a tensor of rank at least 1, got a scalar.")
    axes = normalize_axes(0 if axis is None else axis, x.ndim, "argmax")
    if len(axes) != 1:
        raise ValueError(f"argMax/argMin take one axis, got {axis!r}")
    x = neg(x) if negate else x
    return _drop_axes(T.reduce("argmax", x, axes), axes, False)


def argmax(x: TensorLike, axis: int | None = None) -> Tensor:
    return _arg_reduction(x, axis, False)


def argmin(x: TensorLike, axis: int | None = None) -> Tensor:
    return _arg_reduction(x, axis, True)


def logsumexp(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    if not dtypes.is_float(x.dtype):
        x = T.cast(x, dtypes.float32)
    axes = normalize_axes(axis, x.ndim, "logsumexp") if not (axis is None and x.ndim == 0) else ()
    # Shifting by the max keeps exp in range; the shift's own derivative cancels exactly,
    # so it is held constant (and a non-finite max is replaced by 0, as JAX does).
    m = stop_gradient(max(x, axes, True))
    m = where(is_finite(m), m, 0)
    out = add(log(sum(exp(sub(x, m)), axes, True)), m)
    return _drop_axes(out, axes, keep_dims)


def stop_gradient(x: TensorLike) -> Tensor:
    return T.stop_gradient(convert(x))




def any(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    """TF.js's any: whether some element along the axes is true (x is cast to bool)."""
    x = T.cast(convert(x), dtypes.bool_)
    return greater(sum(x, axis, keep_dims), 0)


def all(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Tensor:  # noqa: A001
    """TF.js's all: whether every element along the axes is true (x is cast to bool)."""
    x = T.cast(convert(x), dtypes.bool_)
    return equal(sum(logical_not(x), axis, keep_dims), 0)
