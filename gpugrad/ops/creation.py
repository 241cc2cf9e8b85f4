"""Tensors made from a shape and a value or a rule: fill, zeros, ones, *_like, arange, linspace,
eye, seeded random_normal / random_uniform.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import dtypes
from .. import tensor as T
from ..tensor import Tensor
from .convert import is_integer, convert, count_arg, shape_arg, tensor
from .elementwise import less, logical_not

TensorLike = Any
__all__ = ['arange', 'eye', 'fill', 'linspace', 'ones', 'ones_like', 'random_normal', 'random_uniform', 'range_', 'zeros', 'zeros_like']


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


