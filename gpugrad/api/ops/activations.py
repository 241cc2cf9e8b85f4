"""Activation functions and softmax, composed of elementwise ops and reductions.
"""
from __future__ import annotations

from typing import Any

import math


from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import convert
from gpugrad.api.ops.elementwise import abs, add, erf, exp, expm1, greater, less_equal, log1p, maximum, mul, neg, pow, sub, tanh, where
from gpugrad.api.ops.reductions import logsumexp, normalize_axes

TensorLike = Any
__all__ = ['elu', 'gelu', 'leaky_relu', 'log_sigmoid', 'log_softmax', 'prelu', 'relu', 'relu6', 'selu', 'softmax', 'softplus']


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


def prelu(x: TensorLike, alpha: TensorLike) -> Tensor:
    """TF.js's prelu: x where x > 0, else alpha * x (alpha broadcasts and is differentiable;
    at x = 0 the gradient is alpha's side, as TF.js's Prelu gradient)."""
    x = convert(x)
    return where(greater(x, 0), x, mul(x, alpha))


SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717


def selu(x: TensorLike) -> Tensor:
    """TF.js's selu: scale * x where x > 0, else scale * alpha * (e^x - 1)."""
    x = convert(x)
    return where(greater(x, 0), mul(x, SELU_SCALE), mul(expm1(x), SELU_SCALE * SELU_ALPHA))


def gelu(x: TensorLike, approximate: bool = False) -> Tensor:
    """GELU. Exact by default, x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), as PyTorch's default
    and TF.js layers' 'gelu' activation; ``approximate=True`` is the tanh form (PyTorch's
    approximate='tanh', TF.js layers' 'gelu_new'), which gelu was before issue 12."""
    x = convert(x)
    if approximate:
        inner = mul(add(x, mul(pow(x, 3), 0.044715)), math.sqrt(2 / math.pi))
        return mul(mul(x, 0.5), add(tanh(inner), 1))
    return mul(mul(x, 0.5), add(erf(mul(x, math.sqrt(0.5))), 1))


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


