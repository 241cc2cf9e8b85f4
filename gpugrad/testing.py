"""Gradient checks for users and for gpugrad's own tests.

``check_grads(f, args, order=2)`` compares reverse-mode derivatives of ``f`` with central
differences along random directions, in float64, up to ``order`` (as JAX's ``check_grads``
and Chainer's ``gradient_check``): the first order checks <grad F(x), v> against
(F(x + h v) - F(x - h v)) / 2h for F(x) = sum(f(x) * u) with a random cotangent u and a random
direction v; each higher order checks the derivative of the previous order's directional
derivative the same way, so order 2 checks Hessian-vector products of every argument. gpugrad
has reverse mode only, so there is no forward-mode side to compare.

Use it on a ``custom_grad`` to check its gradient function::

    from gpugrad.testing import check_grads
    check_grads(my_op, [np.random.rand(3, 4)], order=2)
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from gpugrad.api.autodiff import grads
from gpugrad.api.ops import mul, sum as reduce_sum, tensor
from gpugrad.core.tensor import Tensor

# Central-difference step and tolerances for a float64 check: the truncation error of the
# difference is O(h^2) ~ 1e-10 relative, its rounding error ~ 1e-16 / h ~ 1e-11.
STEP = 1e-5
RTOL = 1e-5
ATOL = 1e-7


class GradientCheckError(AssertionError):
    """A reverse-mode derivative disagrees with central differences."""


def _as_float64(x: Any) -> np.ndarray:
    array = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"check_grads takes numeric arguments, got dtype {array.dtype}")
    return np.array(array, dtype=np.float64)


def _scalarized(f: Callable, u: np.ndarray) -> Callable:
    """F(*xs) = sum(f(*xs) * u), as a function of tensors."""
    def F(*xs):
        y = f(*xs)
        if not isinstance(y, Tensor):
            raise TypeError(f"check_grads: f must return a tensor, got {type(y).__name__}")
        return reduce_sum(mul(y, tensor(u, dtype="float64")))
    return F


def _value(F: Callable, xs: Sequence[np.ndarray]) -> float:
    return float(F(*[tensor(x, dtype="float64") for x in xs]).numpy())


def _directional(F: Callable, xs: list, vs: list, step: float) -> float:
    plus = _value(F, [x + step * v for x, v in zip(xs, vs)])
    minus = _value(F, [x - step * v for x, v in zip(xs, vs)])
    return (plus - minus) / (2 * step)


def check_grads(f: Callable[..., Tensor], args: Sequence[Any], order: int = 1, *,
                step: float = STEP, rtol: float = RTOL, atol: float = ATOL, seed: int = 0) -> None:
    """Raise GradientCheckError unless the derivatives of f up to ``order`` at ``args`` match
    central differences. f takes tensors and returns a tensor of any shape; args are arrays,
    numbers or tensors (checked in float64 whatever their dtype)."""
    if order < 1:
        raise ValueError(f"check_grads: order must be at least 1, got {order}")
    xs = [_as_float64(a) for a in args]
    rng = np.random.default_rng(seed)
    y = f(*[tensor(x, dtype="float64") for x in xs])
    if not isinstance(y, Tensor):
        raise TypeError(f"check_grads: f must return a tensor, got {type(y).__name__}")
    F = _scalarized(f, rng.standard_normal(y.shape))
    for level in range(1, order + 1):
        vs = [rng.standard_normal(x.shape) for x in xs]
        gradient = grads(F)([tensor(x, dtype="float64") for x in xs])
        analytic = float(sum(np.vdot(g.numpy(), v) for g, v in zip(gradient, vs)))
        numeric = _directional(F, xs, vs, step)
        if not abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)):
            shapes = ", ".join(str(list(x.shape)) for x in xs)
            raise GradientCheckError(
                f"order {level} derivative of {getattr(f, '__name__', 'f')} at arguments of shapes "
                f"[{shapes}]: reverse mode gives {analytic!r} along a random direction, central "
                f"differences give {numeric!r} (difference {abs(analytic - numeric):.3g}, "
                f"tolerance {atol + rtol * max(abs(analytic), abs(numeric)):.3g})")
        F = _directional_derivative(F, [tensor(v, dtype="float64") for v in vs])


def _directional_derivative(F: Callable, vs: list) -> Callable:
    """x -> <grad F(x), v>: the function the next order differentiates."""
    def D(*xs):
        # x * 0 keeps D connected to every x: where F is linear its gradient is a constant,
        # and the next order's derivative is zero (not "not connected").
        total = None
        for g, v, x in zip(grads(F)(list(xs)), vs, xs):
            term = reduce_sum(mul(g, v)) + reduce_sum(mul(x, 0.0))
            total = term if total is None else total + term
        return total
    return D
