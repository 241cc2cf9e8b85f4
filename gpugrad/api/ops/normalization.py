"""Normalization: moments (mean and variance over axes), TF.js's batch_norm, and layer_norm.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import convert
from gpugrad.api.ops.elementwise import add, mul, rsqrt, square, sub
from gpugrad.api.ops.reductions import mean, normalize_axes

TensorLike = Any
__all__ = ['batch_norm', 'layer_norm', 'moments']


class Moments(NamedTuple):
    """moments' result: unpacks as (mean, variance), with TF.js's .mean and .variance."""
    mean: Tensor
    variance: Tensor


def moments(x: TensorLike, axis: Any = None, keep_dims: bool = False) -> Moments:
    """TF.js's moments: the mean and the (biased) variance of x over the axes (all by default),
    the variance as the mean of squared deviations from the mean."""
    x = convert(x)
    if not dtypes.is_float(x.dtype):
        x = T.cast(x, dtypes.float32)
    axes = normalize_axes(axis, x.ndim, "moments") if not (axis is None and x.ndim == 0) else ()
    m = mean(x, axes, True)
    variance = mean(square(sub(x, m)), axes, keep_dims)
    if not keep_dims:
        m = T.reshape(m, tuple(d for i, d in enumerate(x.shape) if i not in axes))
    return Moments(m, variance)


def _rank_check(a: Tensor | None, mean_: Tensor, what: str) -> None:
    if a is not None and a.ndim != mean_.ndim:
        raise ValueError(f"Batch normalization gradient requires mean and {what} to have equal "
                         f"ranks. (mean has rank {mean_.ndim}, {what} rank {a.ndim})")


def batch_norm(x: TensorLike, mean: TensorLike, variance: TensorLike,
               offset: TensorLike | None = None, scale: TensorLike | None = None,
               variance_epsilon: float | None = None) -> Tensor:
    """TF.js's batchNorm: (x - mean) / sqrt(variance + variance_epsilon) * scale + offset, with
    TF.js's argument order and default epsilon (0.001). mean, variance, offset and scale have
    x's shape or broadcast to it (the common case: one value per channel, the last axis)."""
    if variance_epsilon is None:
        variance_epsilon = 0.001
    x, mean_, var = convert(x), convert(mean), convert(variance)
    scale_ = convert(scale) if scale is not None else None
    offset_ = convert(offset) if offset is not None else None
    _rank_check(var, mean_, "variance")
    _rank_check(offset_, mean_, "offset")
    _rank_check(scale_, mean_, "scale")
    inv = rsqrt(add(var, variance_epsilon))
    if scale_ is not None:
        inv = mul(inv, scale_)
    out = mul(sub(x, mean_), inv)
    if offset_ is not None:
        out = add(out, offset_)
    if out.shape != x.shape:
        raise ValueError(
            f"batchNorm: mean, variance, offset and scale must broadcast to x's shape "
            f"{list(x.shape)}, but the result has shape {list(out.shape)}.")
    return out


def layer_norm(x: TensorLike, axis: Any = -1, epsilon: float = 1e-3,
               gamma: TensorLike | None = None, beta: TensorLike | None = None) -> Tensor:
    """Layer normalization (no TF.js op; as TF.js layers' layerNormalization, whose defaults
    are axis -1 and epsilon 1e-3): x normalized by its moments over ``axis`` (kept),
    then times gamma and plus beta where given (they broadcast against x)."""
    x = convert(x)
    if not dtypes.is_float(x.dtype):
        x = T.cast(x, dtypes.float32)
    axes = normalize_axes(axis, x.ndim, "layer_norm")
    m, v = moments(x, axes, True)
    out = mul(sub(x, m), rsqrt(add(v, epsilon)))
    if gamma is not None:
        out = mul(out, gamma)
    if beta is not None:
        out = add(out, beta)
    return out
