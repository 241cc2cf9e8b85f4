"""Tensor's chaining methods and Python operators, taken from the op functions."""
from __future__ import annotations

import numbers

import numpy as np

from gpugrad.api import ops as O
from gpugrad.api.numpy_interop import array_function, array_ufunc
from gpugrad.core.primitives import elementwise as elementwise_records
from gpugrad.core.tensor import Tensor
from gpugrad.core.tfjs_names import install as install_tfjs_names
from gpugrad.api.variables import variable as make_variable

# TF.js chaining methods (snake_case; the camelCase aliases come from tfjs_names.py): every
# public elementwise primitive by its name (derived from the records), and the composite ops.
_METHODS = {p.name: getattr(O, p.name) for p in elementwise_records() if p.public}
_METHODS.update({
    "square": O.square, "relu": O.relu, "elu": O.elu, "softplus": O.softplus,
    "logical_not": O.logical_not, "clip_by_value": O.clip_by_value,
    "cast": O.cast, "sum": O.sum, "mean": O.mean, "max": O.max, "min": O.min, "prod": O.prod,
    "logsumexp": O.logsumexp, "argmax": O.argmax, "argmin": O.argmin, "reshape": O.reshape,
    "transpose": O.transpose, "expand_dims": O.expand_dims, "squeeze": O.squeeze,
    "broadcast_to": O.broadcast_to, "slice": O.slice, "pad": O.pad, "matmul": O.matmul,
    "softmax": O.softmax, "log_softmax": O.log_softmax, "flatten": O.flatten, "tile": O.tile,
    "squared_difference": O.squared_difference, "norm": O.norm, "dot": O.dot,
    "stop_gradient": O.stop_gradient, "clone": O.clone, "leaky_relu": O.leaky_relu, "gelu": O.gelu,
    "step": O.step, "is_inf": O.is_inf, "is_nan": O.is_nan, "is_finite": O.is_finite,
    "logical_xor": O.logical_xor, "div_no_nan": O.div_no_nan, "any": O.any, "all": O.all,
    "top_k": O.top_k, "prelu": O.prelu, "selu": O.selu, "log_sigmoid": O.log_sigmoid,
    "relu6": O.relu6,
    "gather": O.gather, "reverse": O.reverse, "split": O.split, "one_hot": O.one_hot,
    "unsorted_segment_sum": O.unsorted_segment_sum, "cumsum": O.cumsum, "cumprod": O.cumprod,
})


def _install() -> None:
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)

    def swap(fn):
        return lambda self, other: fn(other, self)

    for dunder, fn in (("add", O.add), ("sub", O.sub), ("mul", O.mul), ("truediv", O.div),
                       ("pow", O.pow), ("matmul", O.matmul)):
        setattr(Tensor, f"__{dunder}__", fn)
        setattr(Tensor, f"__r{dunder}__", swap(fn))
    Tensor.__neg__ = O.neg
    Tensor.__abs__ = O.abs
    Tensor.__lt__ = O.less
    Tensor.__le__ = O.less_equal
    Tensor.__gt__ = O.greater
    Tensor.__ge__ = O.greater_equal
    Tensor.__getitem__ = O.getitem

    # == and != are elementwise, like < and > (and like numpy and PyTorch): where(x == 0, ...)
    # must compare values, not identities. Other objects (None, strings, ...) are not
    # tensor-like: NotImplemented lets Python fall back to identity, so `t == None` is False.
    # Tensors stay hashable by identity (Tensor.__hash__ is object.__hash__), so dicts and
    # sets of tensors work; lists must not be searched with `in`/`index` (they use ==).
    comparable = (Tensor, numbers.Number, np.ndarray, np.generic, list, tuple)

    def eq(self, other):
        return O.equal(self, other) if isinstance(other, comparable) else NotImplemented

    def ne(self, other):
        return O.not_equal(self, other) if isinstance(other, comparable) else NotImplemented

    Tensor.__eq__ = eq
    Tensor.__ne__ = ne

    def variable(self, trainable: bool = True, name: str | None = None, dtype=None):
        return make_variable(self, trainable, name, dtype)

    Tensor.variable = variable
    # numpy on tensors: ufuncs gpugrad has run as its ops (and stay differentiable), anything
    # else raises (gpugrad/api/numpy_interop.py); np.asarray(t) still converts through __array__.
    Tensor.__array_ufunc__ = array_ufunc
    Tensor.__array_function__ = array_function
    install_tfjs_names(Tensor)


_install()
