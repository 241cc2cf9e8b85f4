"""Tensors made from a shape and a value or a rule: fill, zeros, ones, *_like, arange, linspace,
eye, and seeded random tensors: random_normal, random_uniform, truncated_normal,
random_standard_normal, random_uniform_int, multinomial. Random values are drawn on the host by
numpy's Generator (default_rng(seed)) and uploaded, so a seed gives the same values on every
backend.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.backends import to_numpy
from gpugrad.runtime.engine import realize
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import is_integer, convert, count_arg, shape_arg, tensor
from gpugrad.api.ops.elementwise import less, logical_not

TensorLike = Any
__all__ = ['arange', 'eye', 'fill', 'linspace', 'multinomial', 'ones', 'ones_like', 'random_normal', 'random_standard_normal', 'random_uniform', 'random_uniform_int', 'range_', 'truncated_normal', 'zeros', 'zeros_like']


def fill(shape: Sequence[int], value: Any, dtype: Any = None, _api: str = "fill") -> Tensor:
    dt = dtypes.canonical(dtype) if dtype is not None else (
        dtypes.bool_ if isinstance(value, bool) else dtypes.float32)
    return T.const(value, shape_arg(shape, _api), dt)


def zeros(shape: Sequence[int], dtype: Any = "float32") -> Tensor:
    return fill(shape, 0, dtype, "zeros")


def ones(shape: Sequence[int], dtype: Any = "float32") -> Tensor:
    return fill(shape, 1, dtype, "ones")


def zeros_like(x: TensorLike) -> Tensor:
    x = convert(x)
    if T.trace.depth:
        # Inside a gradient call the result must stay connected to x with a zero gradient
        # (TF.js's ZerosLike has one): a bare constant made grad(zeros_like) "not connected".
        # x < x is false for every x, NaN included, and comparisons have zero gradients.
        return T.cast(less(x, x), x.dtype)
    return T.const(0, x.shape, x.dtype)


def ones_like(x: TensorLike) -> Tensor:
    x = convert(x)
    if T.trace.depth:  # connected, zero gradient: see zeros_like
        return T.cast(logical_not(less(x, x)), x.dtype)
    return T.const(1, x.shape, x.dtype)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = "float32") -> Tensor:
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange() step must not be 0")
    return tensor(np.arange(start, stop, step), dtype=dtype)


range_ = arange


def linspace(start: float, stop: float, num: int) -> Tensor:
    if is_integer(num) and num <= 0:
        raise ValueError(f"The number of values should be positive, got num={num}")
    num = count_arg(num, "linspace", "num", 1)
    return tensor(np.linspace(start, stop, num))


def eye(num_rows: int, num_columns: int | None = None, dtype: Any = "float32") -> Tensor:
    num_rows = count_arg(num_rows, "eye", "num_rows")
    if num_columns is not None:
        num_columns = count_arg(num_columns, "eye", "num_columns")
    return tensor(np.eye(num_rows, num_columns), dtype=dtype)


def random_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0,
                  dtype: Any = "float32", seed: int | None = None) -> Tensor:
    rng = np.random.default_rng(seed)
    return tensor(rng.normal(mean, stddev, shape_arg(shape, "random_normal")), dtype=dtype)


def random_uniform(shape: Sequence[int], minval: float = 0.0, maxval: float = 1.0,
                   dtype: Any = "float32", seed: int | None = None) -> Tensor:
    rng = np.random.default_rng(seed)
    return tensor(rng.uniform(minval, maxval, shape_arg(shape, "random_uniform")), dtype=dtype)




def _no_bool(dtype: Any, api: str) -> None:
    if dtype is not None and dtypes.canonical(dtype) == dtypes.bool_:
        raise ValueError(f"Unsupported data type {dtypes.canonical(dtype)} ({api} makes float32, "
                         "float64 or int32 values)")


def truncated_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0,
                     dtype: Any = None, seed: int | None = None) -> Tensor:
    """TF.js's truncatedNormal: normal values, where those more than 2 standard deviations
    from the mean are drawn again (so all lie within mean +- 2 stddev)."""
    _no_bool(dtype, "truncatedNormal")
    shape = shape_arg(shape, "truncated_normal")
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return _gauss(values * stddev + mean, dtype)


def _gauss(values: np.ndarray, dtype: Any) -> Tensor:
    """Normal values as TF.js's MPRandGauss gives them: int32 ones rounded (Math.round)."""
    dtype = dtypes.canonical(dtype or "float32")
    if dtype == dtypes.int32:
        values = np.floor(values + 0.5)
    return tensor(values, dtype=dtype)


def random_standard_normal(shape: Sequence[int], dtype: Any = None, seed: int | None = None) -> Tensor:
    """TF.js's randomStandardNormal: normal values with mean 0 and stddev 1 (int32: rounded)."""
    _no_bool(dtype, "randomStandardNormal")
    rng = np.random.default_rng(seed)
    return _gauss(rng.standard_normal(shape_arg(shape, "random_standard_normal")), dtype)


def random_uniform_int(shape: Sequence[int], minval: int, maxval: int, seed: int | None = None) -> Tensor:
    """TF.js's randomUniformInt: int32 values uniform in [minval, maxval)."""
    for name, value in (("minval", minval), ("maxval", maxval)):
        if not is_integer(value):
            raise TypeError(f"randomUniformInt(): {name} must be an integer, got {value!r}")
    if maxval <= minval:
        raise ValueError(f"randomUniformInt(): maxval ({maxval}) must be greater than minval "
                         f"({minval}): the range [minval, maxval) is empty.")
    rng = np.random.default_rng(seed)
    values = rng.integers(int(minval), int(maxval), shape_arg(shape, "random_uniform_int"))
    return tensor(values, dtype="int32")


def multinomial(logits: TensorLike, num_samples: int, seed: int | None = None,
                normalized: bool = False) -> Tensor:
    """TF.js's multinomial: num_samples int32 outcome indices drawn for each row of logits
    (rank 1: one row, giving shape [num_samples]; rank 2: [batch, num_samples]). logits are
    unnormalized log-probabilities, or probabilities that sum to 1 with normalized=True. It
    reads logits' values to the host (drawing is not differentiable)."""
    x = convert(logits)
    if x.size < 2:
        raise ValueError(f"Error in multinomial: you need at least 2 outcomes, but got {x.size}.")
    if x.ndim > 2:
        raise ValueError(f"Rank of probabilities must be 1 or 2, but is {x.ndim}")
    num_samples = count_arg(num_samples, "multinomial", "num_samples")
    realize([x])
    rows = np.asarray(to_numpy(x.buf), dtype=np.float64).reshape(-1, x.shape[-1])
    if normalized:
        probs = rows
    else:
        shifted = rows - rows.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
    probs = probs / probs.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(probs, axis=1)
    draws = rng.random((rows.shape[0], num_samples))
    samples = np.empty((rows.shape[0], num_samples), dtype=np.int32)
    for r in range(rows.shape[0]):
        samples[r] = np.minimum(np.searchsorted(cdf[r], draws[r] * cdf[r, -1], side="right"),
                                rows.shape[1] - 1)
    return tensor(samples.reshape(num_samples) if x.ndim == 1 else samples, dtype="int32")
