"""Elementwise ops with numpy broadcasting: every public elementwise primitive (derived from
the records in gpugrad/core/primitives/), where, and composites of them.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.compile import lax
from gpugrad.core import primitives as P
from gpugrad.core import tensor as T
from gpugrad.core.primitives import elementwise as _elementwise_records
from gpugrad.core.nodes import KIND_ELEMENTWISE, KIND_POW, KIND_SQUARE, elementwise_op
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import cast, convert, shape_arg

TensorLike = Any
__all__ = ['add_n', 'broadcast_shapes', 'broadcast_to', 'clip_by_value', 'div_no_nan', 'is_finite', 'is_inf', 'is_nan', 'logical_not', 'logical_xor', 'square', 'squared_difference', 'step', 'where'] + [p.name for p in _elementwise_records() if p.public]


# --- broadcasting and dtype promotion ------------------------------------------------------


broadcast_shapes = lax.broadcast_shapes


def broadcast_to(x: TensorLike, shape: Sequence[int]) -> Tensor:
    x = convert(x)
    shape = shape_arg(shape, "broadcast_to")
    if len(shape) < x.ndim:
        raise ValueError(
            f"broadcastTo(): the new rank {len(shape)} is below the tensor's rank {x.ndim} "
            f"(shapes {list(x.shape)} to {list(shape)}).")
    x1 = T.reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
    for have, want in zip(x1.shape, shape):
        if have != 1 and have != want:
            raise ValueError(
                f"broadcastTo(): cannot broadcast shape {list(x.shape)} to {list(shape)}; "
                "every axis must be 1 or equal to the target.")
    return T.expand(x1, shape)


def _operands(op: str, args: tuple) -> list:
    """Lists and arrays to tensors (float data takes the tensors' float dtype, as Python
    numbers do); tensors as their current value; numbers as they are, for lax's weak typing."""
    out, tensors = [], False
    for a in args:   # the common case first: tensors and Python numbers, as they are
        cls = a.__class__
        if cls is Tensor:
            tensors = True
        elif cls is not float and cls is not int and cls is not bool:
            break
        out.append(a)
    else:
        if tensors:
            return out
    dtype = None
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype if dtype is None else dtypes.promote(dtype, a.dtype)
    out = []
    for a in args:
        if isinstance(a, Tensor):
            out.append(a._node())
        elif isinstance(a, numbers.Number) or isinstance(a, np.generic):
            out.append(a)
        else:
            kind = np.asarray(a).dtype.kind if isinstance(a, (list, tuple)) \
                else getattr(a, "dtype", np.dtype("float64")).kind
            out.append(convert(a, dtype if dtype is not None and kind == "f" and dtypes.is_float(dtype)
                               else None))
    if not any(isinstance(t, Tensor) for t in out):
        out = [convert(a) for a in args]   # numbers only: tensors of TF.js's default dtypes
    return out


def _elementwise(op: str, *args) -> Tensor:
    return lax.apply(op, *_operands(op, args))


# The ops' common cases below are each op's whole cost in a traced f, so they test classes
# (a Variable reads as its value) and read the dtypes they compare against from their closure;
# where the C node is compiled, the first of them runs in C (nodes.elementwise_op), and these
# functions take the rest.

def _unary(op: str):
    needs_float = op in P.FLOAT_ONLY
    floats, bool_ = dtypes.FLOATS, dtypes.bool_

    def fn(x: TensorLike) -> Tensor:
        if x.__class__ is not Tensor and isinstance(x, Tensor):   # a Variable: its value
            x = x._node()
        if x.__class__ is Tensor and (x.dtype in floats or not needs_float) \
                and x.dtype != bool_ and x.op != "const":
            return Tensor(op, (x,), None, x.shape, x.dtype)  # the common case, kept cheap
        return _elementwise(op, x)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {op}; math in kernels/elementwise/{op}.cu."
    return elementwise_op(fn, op, 1, False, needs_float, Tensor)


def _binary(op: str):
    out_bool = op in P.COMPARISONS
    fast = op not in P.LOGICAL
    floats, bool_, apply_number = dtypes.FLOATS, dtypes.bool_, lax.apply_number

    def fn(a: TensorLike, b: TensorLike) -> Tensor:
        if a.__class__ is not Tensor and isinstance(a, Tensor):   # a Variable: its value
            a = a._node()
        if b.__class__ is not Tensor and isinstance(b, Tensor):
            b = b._node()
        if fast and a.__class__ is Tensor:
            dtype = a.dtype
            if b.__class__ is Tensor:
                # two float tensors of one shape and dtype
                if a.shape == b.shape and dtype == b.dtype and dtype in floats \
                        and a.op != "const" and b.op != "const":
                    return Tensor(op, (a, b), None, a.shape, bool_ if out_bool else dtype)
            # a float tensor and a Python number (x * 2.0, 1 - x): the number is a constant
            # of the tensor's dtype, without the general conversion and promotion
            elif (b.__class__ is float or b.__class__ is int) and dtype in floats and a.op != "const":
                return apply_number(op, a, b)
        elif fast and b.__class__ is Tensor and (a.__class__ is float or a.__class__ is int) \
                and b.dtype in floats and b.op != "const":
            return apply_number(op, b, a, left=True)
        return _elementwise(op, a, b)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {op} with numpy broadcasting; math in kernels/elementwise/{op}.cu."
    if not fast:
        return fn
    return elementwise_op(fn, op, 2, out_bool, True, Tensor, KIND_POW if op == "pow" else KIND_ELEMENTWISE)


# Every public elementwise primitive is an op of its name: tf.exp, tf.atan2, ... (records in
# gpugrad/core/primitives/elementwise.py).
for _prim in _elementwise_records():
    if _prim.public:
        globals()[_prim.name] = (_unary if _prim.arity == 1 else _binary)(_prim.name)
del _prim


def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    c = convert(condition)
    if c.dtype != dtypes.bool_:
        c = cast(c, dtypes.bool_)
    return lax.apply("where", c, *_operands("where", (a, b)))


def logical_not(x: TensorLike) -> Tensor:
    return equal(cast(convert(x), dtypes.bool_), False)


def _square(x: TensorLike) -> Tensor:
    if x.__class__ is not Tensor:
        x = convert(x)
    return mul(x, x)


_square.__name__ = _square.__qualname__ = "square"
_square.__doc__ = "x * x, elementwise."
square = elementwise_op(_square, "mul", 1, False, True, Tensor, KIND_SQUARE)


def squared_difference(a: TensorLike, b: TensorLike) -> Tensor:
    return square(sub(a, b))


def clip_by_value(x: TensorLike, clip_value_min: float, clip_value_max: float) -> Tensor:
    if clip_value_min > clip_value_max:
        raise ValueError(
            f"Error in clip: min ({clip_value_min}) must be less than or equal to max ({clip_value_max}).")
    x = convert(x)
    return where(less(x, clip_value_min), clip_value_min,
                 where(greater(x, clip_value_max), clip_value_max, x))


def is_nan(x: TensorLike) -> Tensor:
    x = convert(x)
    return not_equal(x, x)


def is_finite(x: TensorLike) -> Tensor:
    x = convert(x)
    return less(abs(x), math.inf)



def is_inf(x: TensorLike) -> Tensor:
    x = convert(x)
    return equal(abs(x), math.inf)


def logical_xor(a: TensorLike, b: TensorLike) -> Tensor:
    """TF.js's logicalXor: true where exactly one of a, b is (both are cast to bool)."""
    return not_equal(cast(convert(a), dtypes.bool_), cast(convert(b), dtypes.bool_))


def step(x: TensorLike, alpha: float = 0.0) -> Tensor:
    """TF.js's step: 1 where x > 0, else alpha; NaN stays NaN. Zero gradient (as TF.js)."""
    x = convert(x)
    return where(not_equal(x, x), x, where(greater(x, 0), 1, alpha))


def div_no_nan(a: TensorLike, b: TensorLike) -> Tensor:
    """TF.js's divNoNan: a / b, and 0 where b is 0 (even for 0 / 0). The division runs on a
    divisor with its zeros replaced by 1, so the gradient is 0 there too, never NaN."""
    a, b = _operands("div_no_nan", (a, b))
    a, b = (x if isinstance(x, Tensor) else convert(x) for x in (a, b))
    zero = equal(b, 0)
    return where(zero, 0, div(a, where(zero, 1, b)))


def add_n(tensors: Sequence[TensorLike]) -> Tensor:
    """TF.js's addN: the elementwise sum of tensors of one shape and dtype (no broadcasting)."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError("The argument passed to tf.addN() must be a list of tensors")
    if len(tensors) < 1:
        raise ValueError(f"Must pass at least one tensor to tf.addN(), but got {len(tensors)}")
    ts = [convert(t) for t in tensors]
    first = ts[0]
    for t in ts:
        if t.dtype != first.dtype:
            raise ValueError(
                "All tensors passed to tf.addN() must have the same dtype "
                f"(got {', '.join(sorted({u.dtype for u in ts}))})")
    for t in ts:
        if t.shape != first.shape:
            raise ValueError(
                "All tensors passed to tf.addN() must have the same shape "
                f"(got {' and '.join(str(list(u.shape)) for u in ts)})")
    total = ts[0]
    for t in ts[1:]:
        total = add(total, t)
    return total
