"""Linear algebra: matmul (with transposes and batch broadcasting), dot, outer_product, norm, einsum.
"""
from __future__ import annotations

from typing import Any

import math

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor, shape_str
from gpugrad.api.ops.convert import convert
from gpugrad.api.ops.elementwise import abs, broadcast_shapes, broadcast_to, mul, sqrt, square
from gpugrad.api.ops.reductions import max, sum
from gpugrad.api.ops.movement import reshape, transpose

TensorLike = Any
__all__ = ['dot', 'einsum', 'matmul', 'norm', 'outer_product']


# --- matmul ----------------------------------------------------------------------------------


def matmul(a: TensorLike, b: TensorLike, transpose_a: bool = False, transpose_b: bool = False) -> Tensor:
    if isinstance(a, Tensor) != isinstance(b, Tensor):  # an array operand takes the tensor's dtype
        like = (a if isinstance(a, Tensor) else b)._node().dtype
        a, b = (convert(t, None if isinstance(t, Tensor) or not dtypes.is_float(like) else like) for t in (a, b))
    a, b = convert(a), convert(b)
    dtype = dtypes.promote(a.dtype, b.dtype)
    if not dtypes.is_float(dtype):
        dtype = dtypes.float32
    # Casts and broadcasts only where they change something: inside f each would be an
    # identity node otherwise (the result is a new node anyway)
    if a.dtype != dtype:
        a = T.cast(a, dtype)
    if b.dtype != dtype:
        b = T.cast(b, dtype)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matMul needs tensors of rank >= 1, got shapes {list(a.shape)} and {list(b.shape)}; "
            "use mul for scalars.")
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = T.reshape(a, (1,) + a.shape)
    if squeeze_b:
        b = T.reshape(b, b.shape + (1,))
    if transpose_a:
        a = T.permute(a, tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2))
    if transpose_b:
        b = T.permute(b, tuple(range(b.ndim - 2)) + (b.ndim - 1, b.ndim - 2))
    if a.shape[-1] != b.shape[-2]:
        ta, tb = str(bool(transpose_a)).lower(), str(bool(transpose_b)).lower()
        raise ValueError(
            f"Error in matMul: inner shapes ({a.shape[-1]}) and ({b.shape[-2]}) of Tensors with shapes "
            f"{shape_str(a.shape)} and {shape_str(b.shape)} and transposeA={ta} and transposeB={tb} "
            "must match.")
    batch = broadcast_shapes("matmul", a.shape[:-2], b.shape[:-2])
    if a.shape[:-2] != batch:
        a = broadcast_to(a, batch + a.shape[-2:])
    if b.shape[:-2] != batch:
        b = broadcast_to(b, batch + b.shape[-2:])
    out = T.matmul(a, b)
    if squeeze_a or squeeze_b:
        shape = out.shape[:-2] + (() if squeeze_a else out.shape[-2:-1]) + (() if squeeze_b else out.shape[-1:])
        out = T.reshape(out, shape)
    return out


def dot(a: TensorLike, b: TensorLike) -> Tensor:
    return matmul(a, b)


def outer_product(a: TensorLike, b: TensorLike) -> Tensor:
    a, b = convert(a), convert(b)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def norm(x: TensorLike, ord: Any = "euclidean", axis: Any = None, keep_dims: bool = False) -> Tensor:
    x = convert(x)
    if ord in ("euclidean", "fro", 2):
        return sqrt(sum(square(x), axis, keep_dims))
    if ord == 1:
        return sum(abs(x), axis, keep_dims)
    if ord in (np.inf, "inf"):
        return max(abs(x), axis, keep_dims)
    raise ValueError(f"norm(): unsupported ord {ord!r}; use 'euclidean', 1 or inf")


# --- einsum ------------------------------------------------------------------------------------


def einsum(equation: str, *tensors: TensorLike) -> Tensor:
    """TF.js's einsum, lowered to transposes, reshapes and either a (batched) matmul or a
    broadcast multiply and sum. Beyond TF.js: any number of operands, and any number of summed
    labels. As TF.js: an arrow is required, and no label repeats within one operand ('ii->i')
    and no '...'.

    Two float operands go through matmul: labels in both and in the output are batch axes,
    labels in both but not the output are contracted, the rest are each operand's own (a label
    only one operand has and the output lacks is summed out of it first)."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum's equation must be a string, got {type(equation).__name__}")
    equation = "".join(equation.split())
    if "->" not in equation:
        raise ValueError("Equations without an arrow is not supported")
    input_string, output_string = equation.split("->", 1)
    terms = input_string.split(",")
    if len(tensors) != len(terms):
        raise ValueError(f"Expected {len(terms)} input tensors, received {len(tensors)}")
    if "." in equation:
        raise ValueError('The notation "..." is not supported yet.')
    for label in output_string:
        if not any(label in term for term in terms):
            raise ValueError(f"Output subscripts contain the label {label} not present in the "
                             "input subscripts.")
    if len(set(output_string)) != len(output_string):
        raise ValueError(f"Found duplicate axes in the output {output_string}.")
    xs = [convert(t) for t in tensors]
    sizes: dict = {}
    for term, x in zip(terms, xs):
        if len(set(term)) != len(term):
            raise ValueError(f"Found duplicate axes in input component {term}. Support for "
                             "duplicate axes in input is not implemented yet.")
        if len(term) != x.ndim:
            raise ValueError(f"einsum: the subscripts {term!r} name {len(term)} axes, but the "
                             f"operand has shape {list(x.shape)} (rank {x.ndim}).")
        for j, label in enumerate(term):
            if label in sizes and sizes[label] != x.shape[j]:
                raise ValueError(f"Expected dimension {sizes[label]} at axis {j} of input shaped "
                                 f"{shape_json(x.shape)}, but got dimension {x.shape[j]}")
            sizes.setdefault(label, x.shape[j])
    if len(xs) == 2 and all(dtypes.is_float(x.dtype) for x in xs):
        return _einsum_matmul(terms, output_string, xs, sizes)
    return _einsum_broadcast(terms, output_string, xs, sizes)


def shape_json(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _sum_own(term: str, x: Tensor, keep: str) -> tuple:
    """Sum the labels of term that are not in keep out of x."""
    drop = [j for j, label in enumerate(term) if label not in keep]
    if not drop:
        return term, x
    return "".join(label for label in term if label in keep), sum(x, drop)


def _einsum_matmul(terms, out, xs, sizes) -> Tensor:
    (ta, tb), (a, b) = terms, xs
    ta, a = _sum_own(ta, a, tb + out)
    tb, b = _sum_own(tb, b, ta + out)
    batch = [c for c in out if c in ta and c in tb]
    contract = [c for c in ta if c in tb and c not in out]
    own_a = [c for c in ta if c not in tb]
    own_b = [c for c in tb if c not in ta]

    def arrange(term, x, first, second):
        order = batch + first + second
        x = transpose(x, [term.index(c) for c in order]) if list(term) != order else x
        shape = tuple(sizes[c] for c in batch) + (math.prod(sizes[c] for c in first),
                                                  math.prod(sizes[c] for c in second))
        return reshape(x, shape)

    product = matmul(arrange(ta, a, own_a, contract), arrange(tb, b, contract, own_b))
    labels = batch + own_a + own_b
    product = reshape(product, tuple(sizes[c] for c in labels))
    return transpose(product, [labels.index(c) for c in out]) if labels != list(out) else product


def _einsum_broadcast(terms, out, xs, sizes) -> Tensor:
    labels = list(out) + [c for c in dict.fromkeys("".join(terms)) if c not in out]
    result = None
    for term, x in zip(terms, xs):
        present = [c for c in labels if c in term]
        x = transpose(x, [term.index(c) for c in present]) if list(term) != present else x
        x = reshape(x, tuple(sizes[c] if c in term else 1 for c in labels))
        result = x if result is None else mul(result, x)
    summed = list(range(len(out), len(labels)))
    if summed:
        result = sum(result, summed)
    shape = tuple(sizes[c] for c in out)
    return broadcast_to(result, shape) if result.shape != shape else result
