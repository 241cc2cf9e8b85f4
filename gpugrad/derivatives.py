"""The one table of derivative (VJP) rules, one per primitive.

A rule maps (node, dy) to one gradient per operand, or None where no gradient flows. Rules
are written with ops, so gradients are lazy tensors like any other and can be differentiated
again: grad(grad(f)) needs nothing more. Kinks follow JAX and PyTorch: abs'(0) = 0,
relu'(0) = 0, ties of maximum/minimum split the gradient in half, tied maxima of a max
reduction share it evenly; d(x^y)/dx is 0 where y = 0 and d(x^y)/dy is 0 where x <= 0.
"""
from __future__ import annotations

from typing import Callable

from . import dtypes
from . import ops as O
from . import tensor as T
from .tensor import Tensor

Rule = Callable[[Tensor, Tensor], tuple]
RULES: dict[str, Rule] = {}


def rule(*names: str):
    def register(fn: Rule) -> Rule:
        for name in names:
            RULES[name] = fn
        return fn
    return register


def _zeros(x: Tensor) -> Tensor:
    return T.const(0, x.shape, dtypes.grad_dtype(x.dtype))


# --- elementwise ---------------------------------------------------------------------------
RULES["neg"] = lambda n, dy: (O.neg(dy),)
RULES["exp"] = lambda n, dy: (O.mul(dy, n),)
RULES["log"] = lambda n, dy: (O.div(dy, n.src[0]),)
RULES["sqrt"] = lambda n, dy: (O.div(dy, O.mul(n, 2)),)
RULES["rsqrt"] = lambda n, dy: (O.mul(O.mul(dy, -0.5), O.div(n, n.src[0])),)
RULES["sin"] = lambda n, dy: (O.mul(dy, O.cos(n.src[0])),)
RULES["cos"] = lambda n, dy: (O.neg(O.mul(dy, O.sin(n.src[0]))),)
RULES["tanh"] = lambda n, dy: (O.mul(dy, O.sub(1, O.square(n))),)
RULES["sigmoid"] = lambda n, dy: (O.mul(dy, O.mul(n, O.sub(1, n))),)
RULES["log1p"] = lambda n, dy: (O.div(dy, O.add(n.src[0], 1)),)
RULES["expm1"] = lambda n, dy: (O.mul(dy, O.add(n, 1)),)
RULES["abs"] = lambda n, dy: (O.mul(dy, O.sign(n.src[0])),)
RULES["reciprocal"] = lambda n, dy: (O.neg(O.mul(dy, O.square(n))),)
RULES["copy"] = lambda n, dy: (dy,)
RULES["identity"] = lambda n, dy: (dy,)
RULES["add"] = lambda n, dy: (dy, dy)
RULES["sub"] = lambda n, dy: (dy, O.neg(dy))
RULES["mul"] = lambda n, dy: (O.mul(dy, n.src[1]), O.mul(dy, n.src[0]))


@rule("div")
def _div(n, dy):
    x, y = n.src
    dx = O.div(dy, y)
    return dx, O.neg(O.mul(dx, O.div(x, y)))


@rule("pow")
def _pow(n, dy):
    x, y = n.src
    # d/dx x^y = y x^(y-1), taken as 0 where y = 0 (as JAX and PyTorch do): x^0 is the
    # constant 1, while the formula gives 0 * 0^-1 = NaN at x = 0.
    dx = O.mul(dy, O.where(O.equal(y, 0), 0, O.mul(y, O.pow(x, O.sub(y, 1)))))
    # d/dy x^y = x^y log x, taken as 0 where x <= 0 (as TF.js does): log is undefined there
    # and the result would be NaN. The inner where keeps log's own derivative finite.
    positive = O.greater(x, 0)
    dexp = O.where(positive, O.mul(n, O.log(O.where(positive, x, 1))), 0)
    return dx, O.mul(dy, dexp)


def _tie_split(first_wins, tie, dy):
    share = O.where(first_wins, 1.0, O.where(tie, 0.5, 0.0))
    return O.mul(dy, O.cast(share, dy.dtype))


@rule("maximum")
def _maximum(n, dy):
    x, y = n.src
    return (_tie_split(O.greater(x, y), O.equal(x, y), dy),
            _tie_split(O.less(x, y), O.equal(x, y), dy))


@rule("minimum")
def _minimum(n, dy):
    x, y = n.src
    return (_tie_split(O.less(x, y), O.equal(x, y), dy),
            _tie_split(O.greater(x, y), O.equal(x, y), dy))


@rule("where")
def _where(n, dy):
    c = n.src[0]
    return None, O.where(c, dy, 0), O.where(c, 0, dy)


@rule("sign", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
      "logical_and", "logical_or", "argmax")
def _piecewise_constant(n, dy):
    # Connected but flat: the gradient is zero (TF.js gives zeros for sign too).
    return tuple(_zeros(s) for s in n.src)


@rule("cast")
def _cast(n, dy):
    # Gradients pass through casts, to int32 as well (as TF.js does).
    return (O.cast(dy, dtypes.grad_dtype(n.src[0].dtype)),)


@rule("stop_gradient")
def _stop(n, dy):
    return (None,)


# --- reductions ---------------------------------------------------------------------------


@rule("sum")
def _sum(n, dy):
    return (T.expand(dy, n.src[0].shape),)


@rule("max")
def _max(n, dy):
    x = n.src[0]
    hit = O.cast(O.equal(x, T.expand(n, x.shape)), dy.dtype)
    count = O.sum(hit, n.arg, True)
    return (O.mul(hit, T.expand(O.div(dy, count), x.shape)),)


@rule("prod")
def _prod(n, dy):
    # d prod / d x_i is the product of the others. Written so that it stays right, and
    # differentiable, where some x are zero: with one zero entry k, the others' products
    # carry x_k itself (as the sum of the zero entries, 0 in value, 1 in derivative); with
    # two, each zero entry's product carries the other one. Three or more zeros make every
    # product of others vanish to second order, so 0 is exact there for first and second
    # derivatives.
    x = n.src[0]
    axes = n.arg
    xf = O.cast(x, dtypes.grad_dtype(x.dtype))
    is_zero = O.equal(xf, 0)
    safe = O.where(is_zero, 1, xf)
    nonzero_prod = T.expand(O.prod(safe, axes, True), x.shape)
    zeros = T.expand(O.sum(O.cast(is_zero, xf.dtype), axes, True), x.shape)
    zero_sum = T.expand(O.sum(O.where(is_zero, xf, 0), axes, True), x.shape)
    at_nonzero = O.where(O.equal(zeros, 0), O.div(nonzero_prod, safe),
                         O.where(O.equal(zeros, 1), O.mul(O.div(nonzero_prod, safe), zero_sum), 0))
    at_zero = O.where(O.equal(zeros, 1), nonzero_prod,
                      O.where(O.equal(zeros, 2), O.mul(nonzero_prod, O.sub(zero_sum, xf)), 0))
    return (O.mul(T.expand(dy, x.shape), O.where(is_zero, at_zero, at_nonzero)),)


# --- movement -----------------------------------------------------------------------------


@rule("reshape")
def _reshape(n, dy):
    return (T.reshape(dy, n.src[0].shape),)


@rule("permute")
def _permute(n, dy):
    inverse = [0] * len(n.arg)
    for i, p in enumerate(n.arg):
        inverse[p] = i
    return (T.permute(dy, tuple(inverse)),)


@rule("expand")
def _expand(n, dy):
    # The one place where broadcasting is undone: sum over the axes that were size 1.
    src = n.src[0]
    axes = tuple(i for i, (a, b) in enumerate(zip(src.shape, n.shape)) if a == 1 and b != 1)
    return (O.sum(dy, axes, True) if axes else dy,)


@rule("slice")
def _slice(n, dy):
    return (T.unslice(dy, n.src[0].shape, n.arg),)


@rule("unslice")
def _unslice(n, dy):
    return (T.slice_(dy, n.arg[1]),)


@rule("matmul")
def _matmul(n, dy):
    a, b = n.src
    swap = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return T.matmul(dy, T.permute(b, swap)), T.matmul(T.permute(a, swap), dy)


def vjp(node: Tensor, dy: Tensor) -> tuple:
    try:
        rule_fn = RULES[node.op]
    except KeyError:
        raise NotImplementedError(f"No derivative rule for primitive {node.op!r}") from None
    return rule_fn(node, dy)
