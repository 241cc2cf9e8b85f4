"""Shape and movement ops: reshape, transpose, expand_dims, squeeze, slice and indexing, pad,
concat, stack, unstack, tile.
"""
from __future__ import annotations

import builtins
import numbers
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import axis_arg, convert, resolve_shape, shape_arg
from gpugrad.api.ops.elementwise import add, where
from gpugrad.api.ops.reductions import normalize_axes

TensorLike = Any
__all__ = ['concat', 'expand_dims', 'flatten', 'getitem', 'pad', 'reshape', 'slice', 'squeeze', 'stack', 'tile', 'transpose', 'unstack']


# --- movement --------------------------------------------------------------------------------


def reshape(x: TensorLike, shape: Sequence[int]) -> Tensor:
    x = convert(x)
    return T.reshape(x, resolve_shape(x, shape, "reshape"))


def flatten(x: TensorLike) -> Tensor:
    return reshape(x, (-1,))


def transpose(x: TensorLike, perm: Sequence[int] | None = None) -> Tensor:
    x = convert(x)
    if perm is None:
        perm = tuple(reversed(range(x.ndim)))
    perm = axis_arg(list(perm) if isinstance(perm, (tuple, np.ndarray)) else perm, "transpose", "perm")
    perm = tuple([perm] if isinstance(perm, int) else perm)
    if sorted(p % x.ndim if x.ndim else p for p in perm) != list(range(x.ndim)) or len(perm) != x.ndim:
        raise ValueError(
            f"Error in transpose: rank of input {x.ndim} must match length of perm {list(perm)} "
            "and perm must be a permutation of the axes.")
    return T.permute(x, tuple(p % x.ndim for p in perm))


def expand_dims(x: TensorLike, axis: int = 0) -> Tensor:
    x = convert(x)
    rank = x.ndim + 1
    axis = axis_arg(axis, "expand_dims")
    if not isinstance(axis, int) or not -rank <= axis < rank:
        raise ValueError(f"All values in axis param must be in range [-{rank}, {rank}) but got axis {axis}")
    axis %= rank
    return T.reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: TensorLike, axis: Any = None) -> Tensor:
    x = convert(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"Can't squeeze axis {a} of shape {list(x.shape)}: its size is {x.shape[a]}, not 1.")
    return T.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def slice(x: TensorLike, begin: Any, size: Any = None) -> Tensor:  # noqa: A001 - TF.js name
    """tf.slice(x, begin, size): size -1 means to the end."""
    x = convert(x)
    begin = list(shape_arg(begin, "slice", "begin"))
    begin += [0] * (x.ndim - len(begin))
    size = [-1] * x.ndim if size is None else list(shape_arg(size, "slice", "size", infer=True))
    size += [-1] * (x.ndim - len(size))
    slices = []
    for axis, (b, s, d) in enumerate(zip(begin, size, x.shape)):
        end = d if s == -1 else b + s
        if not (0 <= b <= d and b <= end <= d):
            raise ValueError(
                f"Error in slice{x.ndim}D: begin {begin} and size {size} go out of the tensor's "
                f"shape {list(x.shape)} at axis {axis}.")
        slices.append((b, end, 1))
    return T.slice_(x, tuple(slices))


def getitem(x: Tensor, index: Any) -> Tensor:
    """Basic indexing: integers, slices (any step), None and Ellipsis."""
    x = convert(x)
    index = index if isinstance(index, tuple) else (index,)
    for i in index:
        if not (i is None or i is Ellipsis or isinstance(i, (builtins.slice, numbers.Integral))):
            raise TypeError(
                f"Invalid index {i!r} for a tensor of shape {list(x.shape)}: only basic indexing "
                "(ints, slices, None, ...) is supported.")
    n_axes = len([i for i in index if i is not None and i is not Ellipsis])
    if n_axes > x.ndim or list(index).count(Ellipsis) > 1:
        raise IndexError(f"Too many indices for a tensor of shape {list(x.shape)}: {index!r}")
    fill = (builtins.slice(None),) * (x.ndim - n_axes)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + fill + index[at + 1:]
    else:
        index = index + fill
    slices, out_shape = [], []
    for i in index:
        if i is None:
            out_shape.append(1)
            continue
        axis, d = len(slices), x.shape[len(slices)]
        if isinstance(i, builtins.slice):
            start, stop, step = i.indices(d)
            slices.append((start, stop, step))
            out_shape.append(len(range(start, stop, step)))
            continue
        j = int(i) + d if i < 0 else int(i)
        if not 0 <= j < d:
            raise IndexError(f"Index {i} is out of bounds for axis {axis} with size {d} (shape {list(x.shape)})")
        slices.append((j, j + 1, 1))
    return T.reshape(T.slice_(x, tuple(slices)), tuple(out_shape))


def pad(x: TensorLike, paddings: Sequence[Sequence[int]], constant_value: float = 0) -> Tensor:
    x = convert(x)
    if not isinstance(paddings, (list, tuple, np.ndarray)):
        raise TypeError(f"pad(): paddings must be a list of [before, after] pairs, got {paddings!r}.")
    paddings = [shape_arg(p, "pad", f"paddings[{i}]") for i, p in enumerate(paddings)]
    if len(paddings) != x.ndim or any(len(p) != 2 or p[0] < 0 or p[1] < 0 for p in paddings):
        raise ValueError(
            f"pad(): paddings must be one non-negative [before, after] pair per axis of shape "
            f"{list(x.shape)}, got {paddings}")
    shape = tuple(b + d + a for (b, a), d in zip(paddings, x.shape))
    slices = tuple((b, b + d, 1) for (b, _), d in zip(paddings, x.shape))
    out = T.unslice(x, shape, slices)
    if constant_value != 0:
        inside = T.unslice(T.const(True, x.shape, dtypes.bool_), shape, slices)
        out = where(inside, out, constant_value)
    return out


def concat(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    xs = [convert(t) for t in tensors]
    if not xs:
        raise ValueError("concat() needs at least one tensor")
    if len(xs) == 1:
        return T.same(xs[0])
    rank = xs[0].ndim
    ax = normalize_axes(axis, rank, "concat")[0]
    for k, t in enumerate(xs[1:], 1):
        if t.ndim != rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, xs[0].shape)) if i != ax):
            raise ValueError(
                f"Error in concat{rank}D: shape of tensors[{k}] ({list(t.shape)}) does not "
                f"match the shape of the rest ({list(xs[0].shape)}) along the non-concatenated axis "
                f"{[i for i in range(rank) if i != ax]}.")
    dtype = xs[0].dtype
    for t in xs[1:]:
        dtype = dtypes.promote(dtype, t.dtype)
    total = builtins.sum(t.shape[ax] for t in xs)
    shape = xs[0].shape[:ax] + (total,) + xs[0].shape[ax + 1:]
    out, offset = None, 0
    for t in xs:  # concat is a sum of zero-padded pieces: its gradient is slicing
        slices = tuple((offset, offset + t.shape[ax], 1) if i == ax else (0, d, 1)
                       for i, d in enumerate(t.shape))
        piece = T.unslice(T.cast(t, dtype), shape, slices)
        out = piece if out is None else add(out, piece)
        offset += t.shape[ax]
    return out


def stack(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    xs = [convert(t) for t in tensors]
    if not xs:
        raise ValueError("stack() needs at least one tensor")
    for t in xs[1:]:
        if t.shape != xs[0].shape:
            raise ValueError(
                f"All tensors passed to stack must have matching shapes; got {list(xs[0].shape)} "
                f"and {list(t.shape)}.")
    return concat([expand_dims(t, axis) for t in xs], axis)


def unstack(x: TensorLike, axis: int = 0) -> list[Tensor]:
    x = convert(x)
    ax = normalize_axes(axis, x.ndim, "unstack")[0]
    return [getitem(x, (builtins.slice(None),) * ax + (i,)) for i in range(x.shape[ax])]


def tile(x: TensorLike, reps: Sequence[int]) -> Tensor:
    x = convert(x)
    reps = shape_arg(reps, "tile", "reps")
    if len(reps) != x.ndim:
        raise ValueError(f"tile(): reps {list(reps)} must have one entry per axis of shape {list(x.shape)}")
    inter = tuple(v for d in x.shape for v in (1, d))
    target = tuple(v for r, d in zip(reps, x.shape) for v in (r, d))
    y = T.expand(T.reshape(x, inter), target)
    return T.reshape(y, tuple(r * d for r, d in zip(reps, x.shape)))


