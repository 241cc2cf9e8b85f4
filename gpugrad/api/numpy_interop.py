"""numpy on gpugrad tensors, without silently leaving the graph.

Before this, ``np.exp(t)`` inside a differentiated function went through ``__array__`` and
returned a numpy array: the graph was cut there, and the user met "Cannot find a connection"
far from the cause. Now numpy's ufuncs that gpugrad has run as gpugrad ops (lazy and
differentiable, on the tensor's backend), and every other numpy function or ufunc method
raises a TypeError naming the gpugrad op to use, or saying there is none. np.asarray(t) and
np.array(t) still convert: they read ``__array__``, which is the explicit way out of the graph.
"""
from __future__ import annotations

import numpy as np

from gpugrad.api import ops as O

# numpy ufunc -> the gpugrad op that computes the same thing.
UFUNCS = {
    np.add: O.add, np.subtract: O.sub, np.multiply: O.mul, np.true_divide: O.div,
    np.power: O.pow, np.maximum: O.maximum, np.minimum: O.minimum, np.negative: O.neg,
    np.absolute: O.abs, np.sign: O.sign, np.exp: O.exp, np.log: O.log, np.sqrt: O.sqrt,
    np.tanh: O.tanh, np.sin: O.sin, np.cos: O.cos, np.log1p: O.log1p, np.expm1: O.expm1,
    np.reciprocal: O.reciprocal, np.square: O.square, np.less: O.less,
    np.less_equal: O.less_equal, np.greater: O.greater, np.greater_equal: O.greater_equal,
    np.equal: O.equal, np.not_equal: O.not_equal, np.logical_and: O.logical_and,
    np.logical_or: O.logical_or, np.logical_not: O.logical_not, np.matmul: O.matmul,
    np.isnan: O.is_nan, np.isfinite: O.is_finite, np.isinf: O.is_inf, np.floor: O.floor,
    np.ceil: O.ceil, np.rint: O.round, np.logical_xor: O.logical_xor,
}

# numpy functions (and ufunc methods) -> the gpugrad op to call instead.
FUNCTIONS = {
    "sum": "tf.sum", "mean": "tf.mean", "max": "tf.max", "amax": "tf.max", "min": "tf.min",
    "amin": "tf.min", "prod": "tf.prod", "argmax": "tf.argmax", "argmin": "tf.argmin",
    "reshape": "tf.reshape", "ravel": "tf.flatten", "transpose": "tf.transpose",
    "expand_dims": "tf.expand_dims", "squeeze": "tf.squeeze", "concatenate": "tf.concat",
    "concat": "tf.concat", "stack": "tf.stack", "dot": "tf.dot", "where": "tf.where",
    "clip": "tf.clip_by_value", "tile": "tf.tile", "pad": "tf.pad",
    "broadcast_to": "tf.broadcast_to", "norm": "tf.norm", "outer": "tf.outer_product",
    "zeros_like": "tf.zeros_like", "ones_like": "tf.ones_like", "full_like": "tf.fill",
    "copy": "tf.clone", "sort": None, "cumsum": "tf.cumsum", "cumprod": "tf.cumprod",
    "take": "tf.gather", "flip": "tf.reverse", "split": "tf.split", "logaddexp": None,
}
UFUNC_METHODS = {("add", "reduce"): "tf.sum", ("multiply", "reduce"): "tf.prod",
                 ("maximum", "reduce"): "tf.max", ("minimum", "reduce"): "tf.min",
                 ("add", "accumulate"): "tf.cumsum", ("multiply", "accumulate"): "tf.cumprod"}

_LEAVE = ("If you mean to leave the graph (no gradient flows through the result), convert "
          "first: np.{name}(t.numpy(), ...).")


def _refuse(name: str, suggestion: str | None) -> TypeError:
    if suggestion:
        return TypeError(
            f"numpy.{name}() was called on a gpugrad tensor; it would compute outside gpugrad's "
            f"graph, so no gradient would flow through it. Use {suggestion}(...) instead. "
            + _LEAVE.format(name=name))
    return TypeError(
        f"numpy.{name}() was called on a gpugrad tensor, and gpugrad has no op for it. "
        + _LEAVE.format(name=name))


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """Tensor.__array_ufunc__: np.exp(t), np.add(a, t), ndarray * t, ... as gpugrad ops."""
    name = ufunc.__name__
    if method != "__call__":
        suggestion = UFUNC_METHODS.get((name, method))
        raise _refuse(f"{name}.{method}", suggestion)
    op = UFUNCS.get(ufunc)
    if op is None:
        raise _refuse(name, FUNCTIONS.get(name))
    if kwargs:
        raise TypeError(
            f"numpy.{name}() on a gpugrad tensor runs tf's op, which takes no keyword arguments "
            f"(got {', '.join(sorted(kwargs))}); tensors are immutable, so out= cannot be "
            "supported. Call the gpugrad op directly.")
    return op(*inputs)


def array_function(self, func, types, args, kwargs):
    """Tensor.__array_function__: every other numpy function refuses, naming the op to use."""
    raise _refuse(func.__name__, FUNCTIONS.get(func.__name__))
