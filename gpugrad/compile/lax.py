"""The internal math layer: lazy ops over graph nodes and Python numbers.

Derivative rules are written with these (each rule receives this module), and the public op
layer (gpugrad/api/ops.py) calls them once it has converted its arguments. Nothing here converts
lists or arrays: operands are nodes, or numbers that take the nodes' dtype (weak typing, as in
JAX). Every elementwise primitive is here as a function of its name (L.exp, L.mul, ...),
applying the dtype rule its record declares, numpy broadcasting, and the shortcuts that keep
gradient graphs small (x * 1, x + 0, cheap constant powers).
"""
from __future__ import annotations

import builtins
import numbers
from typing import Any

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core.primitives import PRIMITIVES, elementwise as _elementwise_records
from gpugrad.core.primitives.record import COMPARE, FLOAT, LOGICAL, SELECT
from gpugrad.core.tensor import Tensor, cast, const, elementwise as make, expand, gather, held_value, is_const, matmul, permute, reduce, reshape, same, scan, scatter_add, shape_str, slice_, unslice

grad_dtype = dtypes.grad_dtype

__all__ = ["Tensor", "apply", "broadcast_shapes", "broadcast", "cast", "const", "expand",
           "gather", "grad_dtype", "matmul", "scan", "scatter_add", "permute", "prod", "reshape", "shape_str", "slice_", "sum",
           "unslice", "weak_dtype", "zeros_for", "max"]


def weak_dtype(value: Any, other: str) -> str:
    """Python numbers are weakly typed: they take the tensor's dtype, as in JAX."""
    cls = value.__class__   # (the common classes first: the numbers ABCs are slow to ask)
    if cls is float:
        return other if other in dtypes.FLOATS else dtypes.float32
    if cls is int:
        return other if other != dtypes.bool_ else dtypes.int32
    if isinstance(value, (bool, np.bool_)):
        return other
    if isinstance(value, numbers.Integral):
        return other if other != dtypes.bool_ else dtypes.int32
    return other if dtypes.is_float(other) else dtypes.float32


def broadcast_shapes(op: str, *shapes: tuple) -> tuple:
    if len(shapes) == 2:
        # the common case (an op's two operands), without the general loops: -1 marks an
        # axis where they differ, and the general path below then raises
        a, b = shapes
        if len(a) != len(b):
            if len(a) < len(b):
                a = (1,) * (len(b) - len(a)) + tuple(a)
            else:
                b = (1,) * (len(a) - len(b)) + tuple(b)
        out = tuple([x if x == y or y == 1 else y if x == 1 else -1 for x, y in zip(a, b)])
        if -1 not in out:
            return out
    rank = builtins.max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis, dims in enumerate(zip(*padded)):
        size = 1
        for d in dims:
            if d != 1:
                if size != 1 and d != size:
                    size = -1
                    break
                size = d
        if size == -1:
            raise ValueError(
                f"Operands could not be broadcast together with shapes "
                f"{' and '.join(shape_str(s) for s in shapes)}. ({op}: shapes "
                f"{' and '.join(str(list(s)) for s in shapes)} differ at axis {axis - rank}, "
                "where each must be equal or 1; reshape or expand_dims one of them.)")
        out.append(size)
    return tuple(out)


def broadcast(x: Tensor, shape: tuple) -> Tensor:
    """x to a shape it is known to broadcast to (checked by broadcast_shapes)."""
    if x.op == "const" and x.buf is None:
        return const(x.arg, shape, x.dtype)
    if len(x.shape) != len(shape):   # (a reshape to the same shape is an identity node in f)
        x = reshape(x, (1,) * (len(shape) - len(x.shape)) + x.shape)
    return expand(x, shape)


def _number(value: Any) -> bool:
    cls = value.__class__
    if cls is float or cls is int or cls is bool:
        return True
    if cls is Tensor:   # (numbers.Number is an ABC: isinstance is slow to say no)
        return False
    return isinstance(value, numbers.Number) or isinstance(value, np.generic)


def promote(op: str, args: tuple) -> tuple[list[Tensor], str]:
    """Numbers to constants of the promoted dtype, and every operand to one shape."""
    dtype = None
    numbers_at = []   # the positions of the numbers among args
    for k, a in enumerate(args):
        if _number(a):
            numbers_at.append(k)
        else:
            dtype = a.dtype if dtype is None or a.dtype == dtype else dtypes.promote(dtype, a.dtype)
    if numbers_at:
        if dtype is None:   # numbers only: bool if they all are, else float32 (TF.js's default)
            dtype = dtypes.bool_ if all(isinstance(a, (bool, np.bool_)) for a in args) else dtypes.float32
        for k in numbers_at:
            a = args[k]
            cls = a.__class__
            if cls is not float and cls is not int and cls is not bool \
                    and isinstance(a, numbers.Complex) and not isinstance(a, numbers.Real):
                raise TypeError(
                    f"Unsupported dtype 'complex' ({a!r} in {op}): gpugrad tensors hold "
                    "float32, float64, int32 or bool.")
            weak = weak_dtype(a, dtype)
            if weak != dtype:
                dtype = dtypes.promote(dtype, weak)
        tensors = [a for k, a in enumerate(args) if k not in numbers_at]
    else:
        tensors = args
    shape = tensors[0].shape if tensors else ()
    for t in tensors:
        if t.shape != shape:
            shape = broadcast_shapes(op, *[t.shape for t in tensors])
            break
    # (a number is a constant of the result's shape at once: what broadcast would make of it)
    if numbers_at:
        return [const(a, shape, dtype) if k in numbers_at else a if a.shape == shape else broadcast(a, shape)
                for k, a in enumerate(args)], dtype
    return [a if a.shape == shape else broadcast(a, shape) for a in args], dtype


def apply(name: str, *args: Any) -> Tensor:
    """The elementwise primitive ``name`` over nodes and numbers, with its record's dtype rule."""
    rule = PRIMITIVES[name].result
    if rule == SELECT:
        condition, (a, b) = args[0], args[1:]
        c = condition if not _number(condition) else const(condition, (), dtypes.bool_)
        (a, b), dtype = promote(name, (a, b))
        # (the operands themselves where they have the dtype: cast() would make identity
        # nodes inside f; the result is a new node anyway)
        c, a, b = [t if t.dtype == want else cast(t, want)
                   for t, want in ((c, dtypes.bool_), (a, dtype), (b, dtype))]
        shape = broadcast_shapes(name, c.shape, a.shape)
        c, a, b = [t if t.shape == shape else broadcast(t, shape) for t in (c, a, b)]
        return make(name, (c, a, b), dtype)
    xs, dtype = promote(name, args)
    if rule == LOGICAL:
        dtype = dtypes.bool_
    elif rule == FLOAT and not dtypes.is_float(dtype):
        dtype = dtypes.float32
    elif dtype == dtypes.bool_ and rule != COMPARE:
        dtype = dtypes.int32
    # (x itself where it has the dtype: cast() would make an identity node inside f)
    xs = tuple([x if x.dtype == dtype else cast(x, dtype) for x in xs])
    return _made(name, xs, dtype, rule)


def apply_number(name: str, x: Tensor, value: Any, left: bool = False) -> Tensor:
    """apply(name, x, value) (apply(name, value, x) when left) for a tensor x and a Python
    int or float, as apply() computes it, without its general promotion: for a float x the
    number is a constant of x's dtype and x's shape (weak typing; what promote and broadcast
    make of it). x is no constant node (there is nothing to fold)."""
    rule = PRIMITIVES[name].result
    if rule == SELECT or rule == LOGICAL or x.dtype not in dtypes.FLOATS:
        return apply(name, value, x) if left else apply(name, x, value)
    dtype = x.dtype
    held = held_value(value, dtype)
    shortcut = _SHORTCUTS.get(name)
    if shortcut is not None:   # (x ** 2 in f on every call: no constant node made for it)
        found = shortcut(x, held, left)
        if found is not None:
            return found
    c = Tensor("const", (), held, x.shape, dtype)   # const(value, x.shape, dtype)
    # (the node itself: x is no constant, so make() would fold nothing)
    return Tensor(name, (c, x) if left else (x, c), None, x.shape,
                  dtypes.bool_ if rule == COMPARE else dtype)


def _made(name: str, xs: tuple, dtype: str, rule: str) -> Tensor:
    """The node of primitive name over operands of one shape and dtype, or its shortcut."""
    shortcut = _SHORTCUTS.get(name)
    if shortcut is not None:
        a, b = xs
        found = shortcut(a, b.arg, False) if is_const(b) else None
        if found is None and is_const(a):
            found = shortcut(b, a.arg, True)
        if found is not None:
            return found
    return make(name, xs, dtype, dtypes.bool_ if rule == COMPARE else None)


# --- shortcuts: x*1 and 1*x, x+0 are common in gradients; constant powers have cheaper forms ----
# shortcut(x, c, left): x op c (c op x when left) for a constant c, where that needs no node of
# c (None otherwise); c is the value the constant holds in x's dtype.

def _identity_element(value):
    """The shortcut of an op whose identity element is value: x op value = value op x = x."""
    def shortcut(x, c, left):
        return same(x) if c == value else None
    return shortcut


def _sub_shortcut(x, c, left):
    return same(x) if not left and c == 0 else None


def _pow_shortcut(base, c, left):
    if left or base.op == "const":
        return None
    if c == 1:
        return same(base)
    # (the nodes themselves: base is no constant, so make() would fold nothing)
    if c == 2:
        return Tensor("mul", (base, base), None, base.shape, base.dtype)
    if c == 0.5:
        return Tensor("sqrt", (base,), None, base.shape, base.dtype)
    if c == -1:
        return Tensor("reciprocal", (base,), None, base.shape, base.dtype)
    return None


_SHORTCUTS = {"mul": _identity_element(1), "add": _identity_element(0), "sub": _sub_shortcut,
              "pow": _pow_shortcut}


# --- every elementwise primitive as a function of its name (L.exp, L.mul, L.where, ...) ---------

def _bind(name: str):
    def fn(*args):
        return apply(name, *args)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"The {name} primitive over nodes and numbers (kernels/elementwise/{name}.cu)."
    return fn


for _prim in _elementwise_records():
    globals()[_prim.name] = _bind(_prim.name)
    __all__.append(_prim.name)


# --- reductions (reduced axes kept as size 1) and helpers of the rules ------------------------

def sum(x: Tensor, axes: tuple) -> Tensor:  # noqa: A001 - the primitive's name
    if x.dtype == dtypes.bool_:
        x = cast(x, dtypes.int32)
    return reduce("sum", x, tuple(axes))


def prod(x: Tensor, axes: tuple) -> Tensor:
    if x.dtype == dtypes.bool_:
        x = cast(x, dtypes.int32)
    return reduce("prod", x, tuple(axes))


def max(x: Tensor, axes: tuple) -> Tensor:  # noqa: A001 - the primitive's name
    return reduce("max", x, tuple(axes))


def zeros_for(x: Tensor) -> Tensor:
    """The zero cotangent of x (gradients are float even for int and bool operands)."""
    return const(0, x.shape, grad_dtype(x.dtype))
