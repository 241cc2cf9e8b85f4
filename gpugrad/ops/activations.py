"""Activation functions and softmax, composed of elementwise ops and reductions.
"""
from __future__ import annotations

from typing import Any

import math


from ..tensor import Tensor
from .convert import convert
from .elementwise import abs, add, exp, expm1, greater, less_equal, log1p, maximum, mul, neg, pow, sub, tanh, where
from .reductions import logsumexp, normalize_axes

TensorLike = Any
__all__ = ['elu', 'gelu', 'leaky_relu', 'log_sigmoid', 'log_softmax', 'relu', 'relu6', 'softmax', 'softplus']


def relu(x: TensorLike) -> Tensor:
    x = convert(x)
    return where(less_equal(x, 0), 0, x)  # relu'(0) = 0 as in JAX and PyTorch; NaN passes


def relu6(x: TensorLike) -> Tensor:
    # relu6'(0) = 0 like relu'(0) (and TF.js's relu6), relu6'(6) = 1; NaN passes through.
    # clip_by_value would give 1 at 0: its gradient includes both bounds.
    x = convert(x)
    return where(less_equal(x, 0), 0, where(greater(x, 6), 6, x))


def elu(x: TensorLike) -> Tensor:
    x = convert(x)
    return where(greater(x, 0), x, expm1(x))


def leaky_relu(x: TensorLike, alpha: float = 0.2) -> Tensor:
    x = convert(x)
    return where(greater(x, 0), x, mul(x, alpha))


def softplus(x: TensorLike) -> Tensor:
    x = convert(x)  # log(1 + e^x) without overflow: max(x, 0) + log1p(e^-|x|)
    return add(maximum(x, 0), log1p(exp(neg(abs(x)))))  # the tie at 0 gives softplus'(0) = 0.5


def log_sigmoid(x: TensorLike) -> Tensor:
    return neg(softplus(neg(x)))


def gelu(x: TensorLike) -> Tensor:
    x = convert(x)  # tanh approximation, as TF.js layers and PyTorch approximate='tanh'
    inner = mul(add(x, mul(pow(x, 3), 0.044715)), math.sqrt(2 / math.pi))
    return mul(mul(x, 0.5), add(tanh(inner), 1))


def _softmax_axis(x: Tensor, dim: int) -> int:
    if x.ndim == 0:
        raise ValueError("All values in axis param must be in range [-0, 0) but got axis -1")
    return normalize_axes(dim, x.ndim, "softmax")[0]


def softmax(logits: TensorLike, dim: int = -1) -> Tensor:
    x = convert(logits)
    axis = _softmax_axis(x, dim)
    return exp(sub(x, logsumexp(x, axis, True)))


def log_softmax(logits: TensorLike, axis: int = -1) -> Tensor:
    x = convert(logits)
    ax = _softmax_axis(x, axis)
    return sub(x, logsumexp(x, ax, True))


