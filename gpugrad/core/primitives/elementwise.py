"""Elementwise primitives: one record each. The math is the snippet
kernels/elementwise/<name>.cu (C++ and Python at once); ``numpy`` binds the names a snippet
uses beyond the shared namespace of gpugrad/core/snippets.py; ``reference`` is an independent
float64 numpy form, ``domain`` what the tests sample (kept off kinks and singularities).

Rules take the math layer L (gpugrad/compile/lax.py), the node n (operands n.src) and the cotangent
dy. Kinks follow JAX and PyTorch: abs'(0) = 0, relu'(0) = 0, ties of maximum/minimum split
the gradient in half; d(x^y)/dx is 0 where y = 0 and d(x^y)/dy is 0 where x <= 0.

Adding a primitive: write its snippet, add its record here. Nothing else.
"""
from __future__ import annotations

import math

import numpy as np

from gpugrad.core.primitives.record import COMPARE, FLOAT, LOGICAL, NUMERIC, SELECT, declare

SIGNED, POSITIVE, UNIT = (-2.0, 2.0), (0.2, 3.0), (-0.8, 0.8)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _np_erf(x):
    """erf over arrays (numpy has none; math.erf is correctly rounded in double)."""
    x = np.asarray(x)
    return _erf(x).astype(x.dtype) if x.dtype.kind == "f" else _erf(x)


def unary(name: str, vjp, reference, domain=SIGNED, result=FLOAT, **facts):
    return declare(name, "elementwise", 1, vjp, result=result, reference=reference,
                   domain=(domain,), **facts)


def binary(name: str, vjp, reference, domain=(SIGNED, SIGNED), result=NUMERIC, **facts):
    return declare(name, "elementwise", 2, vjp, result=result, reference=reference,
                   domain=domain, **facts)


def _x(n):
    return n.src[0]


def _flat(L, n, dy):
    """Connected but piecewise constant: zero gradients (TF.js gives zeros for sign too)."""
    return tuple(L.zeros_for(s) for s in n.src)


# --- unary -------------------------------------------------------------------------------------
unary("neg", lambda L, n, dy: (L.neg(dy),), np.negative, result=NUMERIC)
unary("exp", lambda L, n, dy: (L.mul(dy, n),), np.exp)
unary("log", lambda L, n, dy: (L.div(dy, _x(n)),), np.log, POSITIVE)
unary("sqrt", lambda L, n, dy: (L.div(dy, L.mul(n, 2)),), np.sqrt, POSITIVE)
unary("rsqrt", lambda L, n, dy: (L.mul(L.mul(dy, -0.5), L.div(n, _x(n))),),
      lambda x: 1 / np.sqrt(x), POSITIVE)
unary("sin", lambda L, n, dy: (L.mul(dy, L.cos(_x(n))),), np.sin)
unary("cos", lambda L, n, dy: (L.neg(L.mul(dy, L.sin(_x(n)))),), np.cos)
unary("tan", lambda L, n, dy: (L.mul(dy, L.add(L.mul(n, n), 1)),), np.tan, (-1.2, 1.2),
      numpy={"tan": np.tan})
unary("asin", lambda L, n, dy: (L.div(dy, L.sqrt(L.sub(1, L.mul(_x(n), _x(n))))),), np.arcsin,
      UNIT, numpy={"asin": np.arcsin})
unary("acos", lambda L, n, dy: (L.neg(L.div(dy, L.sqrt(L.sub(1, L.mul(_x(n), _x(n)))))),),
      np.arccos, UNIT, numpy={"acos": np.arccos})
unary("atan", lambda L, n, dy: (L.div(dy, L.add(L.mul(_x(n), _x(n)), 1)),), np.arctan,
      numpy={"atan": np.arctan})
unary("sinh", lambda L, n, dy: (L.mul(dy, L.cosh(_x(n))),), np.sinh, numpy={"sinh": np.sinh})
unary("cosh", lambda L, n, dy: (L.mul(dy, L.sinh(_x(n))),), np.cosh, numpy={"cosh": np.cosh})
unary("tanh", lambda L, n, dy: (L.mul(dy, L.sub(1, L.mul(n, n))),), np.tanh)
unary("asinh", lambda L, n, dy: (L.div(dy, L.sqrt(L.add(L.mul(_x(n), _x(n)), 1))),), np.arcsinh,
      numpy={"asinh": np.arcsinh})
unary("acosh", lambda L, n, dy: (L.div(dy, L.sqrt(L.sub(L.mul(_x(n), _x(n)), 1))),), np.arccosh,
      (1.2, 3.0), numpy={"acosh": np.arccosh})
unary("atanh", lambda L, n, dy: (L.div(dy, L.sub(1, L.mul(_x(n), _x(n)))),), np.arctanh, UNIT,
      numpy={"atanh": np.arctanh})
unary("erf", lambda L, n, dy: (L.mul(dy, L.mul(L.exp(L.neg(L.mul(_x(n), _x(n)))), 2 / math.sqrt(math.pi))),),
      _np_erf, numpy={"erf": _np_erf})
unary("sigmoid", lambda L, n, dy: (L.mul(dy, L.mul(n, L.sub(1, n))),),
      lambda x: 1 / (1 + np.exp(-x)))
unary("log1p", lambda L, n, dy: (L.div(dy, L.add(_x(n), 1)),), np.log1p, (-0.5, 2.0))
unary("expm1", lambda L, n, dy: (L.mul(dy, L.add(n, 1)),), np.expm1)
unary("abs", lambda L, n, dy: (L.mul(dy, L.sign(_x(n))),), np.abs, result=NUMERIC, smooth=False)
unary("sign", _flat, np.sign, result=NUMERIC, smooth=False)
# Rounding: piecewise constant, zero gradients (as TF.js's Floor, Ceil and Round gradients).
unary("floor", _flat, np.floor, smooth=False, numpy={"floor": np.floor})
unary("ceil", _flat, np.ceil, smooth=False, numpy={"ceil": np.ceil})
unary("round", _flat, np.round, smooth=False, numpy={"rint": np.rint},
      doc="halves to even, as TF.js (and numpy's round)")
unary("reciprocal", lambda L, n, dy: (L.neg(L.mul(dy, L.mul(n, n))),), np.reciprocal, POSITIVE)
unary("copy", lambda L, n, dy: (dy,), lambda x: x, result=NUMERIC, public=False,
      doc="a value written to memory as it is (a plan output that is an input)")

# --- binary ------------------------------------------------------------------------------------
binary("add", lambda L, n, dy: (dy, dy), np.add)
binary("sub", lambda L, n, dy: (dy, L.neg(dy)), np.subtract)
binary("mul", lambda L, n, dy: (L.mul(dy, n.src[1]), L.mul(dy, n.src[0])), np.multiply)


def _div(L, n, dy):
    x, y = n.src
    dx = L.div(dy, y)
    return dx, L.neg(L.mul(dx, L.div(x, y)))


binary("div", _div, np.divide, (SIGNED, POSITIVE), result=FLOAT)


def _pow(L, n, dy):
    x, y = n.src
    # d/dx x^y = y x^(y-1), taken as 0 where y = 0 (as JAX and PyTorch do): x^0 is the
    # constant 1, while the formula gives 0 * 0^-1 = NaN at x = 0.
    dx = L.mul(dy, L.where(L.equal(y, 0), 0, L.mul(y, L.pow(x, L.sub(y, 1)))))
    # d/dy x^y = x^y log x, taken as 0 where x <= 0 (as TF.js does): log is undefined there
    # and the result would be NaN. The inner where keeps log's own derivative finite.
    positive = L.greater(x, 0)
    dexp = L.where(positive, L.mul(n, L.log(L.where(positive, x, 1))), 0)
    return dx, L.mul(dy, dexp)


binary("pow", _pow, np.power, (POSITIVE, SIGNED), result=FLOAT)


def _atan2(L, n, dy):
    x, y = n.src
    scale = L.div(dy, L.add(L.mul(x, x), L.mul(y, y)))
    return L.mul(scale, y), L.neg(L.mul(scale, x))


binary("atan2", _atan2, np.arctan2, (SIGNED, POSITIVE), result=FLOAT, numpy={"atan2": np.arctan2})


def _tfjs_mod(x, y):
    """TF.js's cpu Mod kernel, elementwise in float64: the remainder takes y's sign."""
    rem = np.fmod(x, y)
    same = ((x < 0) & (y < 0)) | ((x >= 0) & (y >= 0))
    return np.where(same, rem, np.fmod(rem + y, y))


def _mod(L, n, dy):
    # As TF.js's Mod gradient: mod(x, y) = x - floor(x / y) * y, with floor held constant.
    x, y = n.src
    return dy, L.mul(dy, L.neg(L.floor(L.div(x, y))))


def _as_double(v):
    return np.asarray(v, dtype=np.float64)


binary("mod", _mod, _tfjs_mod, (SIGNED, POSITIVE), numpy={"fmod": np.fmod},
       doc="the remainder with the divisor's sign, as TF.js (and numpy's mod)")
# floor_div is piecewise constant: zero gradients, as TF Python and JAX. TF.js's FloorDiv
# gradient is div's (dy / y and -dy x / y^2), the derivative of a function it does not compute.
binary("floor_div", _flat, lambda x, y: np.floor(x / y), (SIGNED, POSITIVE), smooth=False,
       numpy={"floor": np.floor, "double": _as_double},
       doc="floor(x / y) as TF.js's floorDiv (int32: exact, 0 where y = 0)")


def _tie_split(L, first_wins, tie, dy):
    share = L.where(first_wins, 1.0, L.where(tie, 0.5, 0.0))
    return L.mul(dy, L.cast(share, dy.dtype))


def _maximum(L, n, dy):
    x, y = n.src
    return (_tie_split(L, L.greater(x, y), L.equal(x, y), dy),
            _tie_split(L, L.less(x, y), L.equal(x, y), dy))


def _minimum(L, n, dy):
    x, y = n.src
    return (_tie_split(L, L.less(x, y), L.equal(x, y), dy),
            _tie_split(L, L.greater(x, y), L.equal(x, y), dy))


binary("maximum", _maximum, np.maximum, smooth=False)
binary("minimum", _minimum, np.minimum, smooth=False)
for _name, _ref in (("less", np.less), ("less_equal", np.less_equal), ("greater", np.greater),
                    ("greater_equal", np.greater_equal), ("equal", np.equal),
                    ("not_equal", np.not_equal)):
    binary(_name, _flat, _ref, result=COMPARE, smooth=False)
binary("logical_and", _flat, np.logical_and, result=LOGICAL, smooth=False)
binary("logical_or", _flat, np.logical_or, result=LOGICAL, smooth=False)


def _where(L, n, dy):
    c = n.src[0]
    return None, L.where(c, dy, 0), L.where(c, 0, dy)


declare("where", "elementwise", 3, _where, result=SELECT, reference=np.where,
        domain=((-1.0, 1.0), SIGNED, SIGNED), smooth=False, public=False,
        doc="where(condition, x, y); the op layer's where() converts the condition to bool")
