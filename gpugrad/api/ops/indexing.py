"""Indexing: one_hot, split, reverse, gather, gather_nd, scatter_nd, unsorted_segment_sum and
indexing by host-known integer or boolean arrays (t[idx], t[mask]).

gather and its adjoint scatter_add are primitives (gpugrad/core/primitives/structural.py) over
canonical shapes: x (B, O, N, C) and int32 indices (B, K). Everything else here reshapes
around them, or is a slice, a comparison with an iota, or a where.

Out-of-range indices: where the indices are known on the host (a list, a numpy array, a number)
the op raises at once, naming the index, its position and the bound, as TF.js's CPU backend
does. Indices that are a tensor are not read back (no device-to-host copy, nothing waits): an
out-of-range one gathers 0 and scatters nowhere, as TF.js's WebGL backend and TF's GPU kernels do.
"""
from __future__ import annotations

import builtins
import math
import numbers
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.compile import lax as L
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import axis_arg, convert, is_integer
from gpugrad.api.ops.movement import getitem as _basic_getitem

TensorLike = Any
__all__ = ['gather', 'gather_nd', 'one_hot', 'reverse', 'scatter_nd', 'split', 'unsorted_segment_sum']


def _host(value: Any):
    """The values of an index argument known on the host (anything but a tensor), else None."""
    if isinstance(value, Tensor):
        return None
    return np.asarray(value)


def _index_tensor(value: Any, arg: str, api: str) -> tuple[Tensor, Any]:
    """(the int32 index tensor, its host values or None)."""
    host = _host(value)
    if host is not None:
        if host.size and host.dtype.kind not in "iu" and not (
                host.dtype.kind == "f" and np.all(host == np.round(host))):
            raise TypeError(f"Argument '{arg}' passed to '{api}' must be int32 tensor, but got "
                            f"{host.dtype} values.")
        host = host.astype(np.int64)
        return convert(host.astype(np.int32), dtypes.int32), host
    t = convert(value)
    if t.dtype != dtypes.int32:
        raise TypeError(f"Argument '{arg}' passed to '{api}' must be int32 tensor, but got "
                        f"{t.dtype} tensor")
    return t, None


def _check_range(host, bound: int, api: str, arg: str, what: str, negatives: bool = False) -> None:
    """Raise naming the first index outside [0, bound) (negative ones allowed with negatives:
    they are dropped)."""
    if host is None or host.size == 0:
        return
    bad = np.flatnonzero((host >= bound) if negatives else ((host < 0) | (host >= bound)))
    if bad.size:
        at = tuple(int(i) for i in np.unravel_index(bad[0], host.shape))
        raise ValueError(f"{api}: {arg}{list(at)} = {int(host.flat[bad[0]])} is not in "
                         f"[0, {bound - 1}] ({what} has size {bound})")


def _axis(axis: Any, rank: int, api: str, arg: str = "axis", allow_end: bool = False) -> int:
    axis = axis_arg(axis, api, arg)
    top = rank + 1 if allow_end else rank
    if not is_integer(axis) or not -top <= axis < top:
        raise ValueError(f"{api}: {arg} must be in [{-top}, {top - 1}] for a tensor of rank {rank}, got {axis!r}")
    return int(axis) % top if top else 0


# --- compositions ----------------------------------------------------------------------------


def one_hot(indices: TensorLike, depth: int, on_value: float = 1, off_value: float = 0,
            dtype: Any = "int32") -> Tensor:
    """tf.oneHot: a new last axis of size depth holding on_value where it equals the index."""
    if not is_integer(depth) or depth < 2:
        raise ValueError(f"Error in oneHot: depth must be >=2, but it is {depth}")
    idx, _ = _index_tensor(indices, "indices", "oneHot")
    dtype = dtypes.canonical(dtype)
    iota = convert(np.arange(depth, dtype=np.int32))
    hit = L.equal(T.reshape(idx, idx.shape + (1,)), T.reshape(iota, (1,) * idx.ndim + (depth,)))
    return T.cast(L.where(hit, on_value, off_value), dtype)


def reverse(x: TensorLike, axis: Any = None) -> Tensor:
    """tf.reverse: x with the order along each of the axes (all by default) reversed."""
    x = convert(x)
    if axis is None:
        axes = set(range(x.ndim))
    else:
        axes = {_axis(a, x.ndim, "reverse") for a in ([axis] if not isinstance(axis, (list, tuple)) else axis)}
    return T.slice_(x, tuple((d - 1, -1, -1) if i in axes else (0, d, 1) for i, d in enumerate(x.shape)))


def split(x: TensorLike, num_or_size_splits: Any, axis: int = 0) -> list[Tensor]:
    """tf.split: equal pieces (a count that divides the axis) or pieces of the given sizes
    (one of them may be -1: the rest)."""
    x = convert(x)
    ax = _axis(axis, x.ndim, "split")
    d = x.shape[ax]
    if is_integer(num_or_size_splits):
        n = int(num_or_size_splits)
        if n <= 0 or d % n:
            raise ValueError(f"Number of splits must evenly divide the axis. (split: {d} along axis "
                             f"{ax} of shape {list(x.shape)} into {n})")
        sizes = [d // n] * n
    else:
        sizes = [int(s) for s in num_or_size_splits]
        if sizes.count(-1) > 1:
            raise ValueError("There should be only one negative value in split array.")
        if -1 in sizes:
            sizes[sizes.index(-1)] = d - (builtins.sum(sizes) + 1)
        if builtins.sum(sizes) != d or any(s < 0 for s in sizes):
            raise ValueError(f"The sum of sizes must match the size of the axis dimension. (split: "
                             f"sizes {list(num_or_size_splits)} along axis {ax} of size {d})")
    out, start = [], 0
    for s in sizes:
        out.append(T.slice_(x, tuple((start, start + s, 1) if i == ax else (0, n, 1)
                                     for i, n in enumerate(x.shape))))
        start += s
    return out


# --- gather and its adjoint --------------------------------------------------------------------


def gather(x: TensorLike, indices: TensorLike, axis: int = 0, batch_dims: int = 0) -> Tensor:
    """tf.gather: slices of x along axis at indices. The result has shape x.shape[:axis] +
    indices.shape[batch_dims:] + x.shape[axis + 1:]; the first batch_dims axes of x and
    indices are batch axes (equal sizes, gathered pairwise)."""
    x = convert(x)
    idx, host = _index_tensor(indices, "indices", "gather")
    rank, irank = x.ndim, idx.ndim
    if not is_integer(batch_dims) or not -irank <= batch_dims <= irank:
        raise ValueError(f"Expect batchDims in the range of [-{irank}, {irank}], but got {batch_dims}")
    bd = int(batch_dims) % (irank + 1) if batch_dims < 0 else int(batch_dims)
    if rank == 0:
        raise ValueError("gather: x must be at least rank 1 (a scalar has no axis to gather along)")
    ax = _axis(axis, rank, "gather")
    if bd > ax:
        raise ValueError(f"batchDims ({bd}) must be less than or equal to axis ({ax}).")
    for i in range(bd):
        if x.shape[i] != idx.shape[i]:
            raise ValueError(f"x.shape[{i}]: {x.shape[i]} should be equal to indices.shape[{i}]: "
                             f"{idx.shape[i]}.")
    n = x.shape[ax]
    _check_range(host, n, "gather", "indices", f"axis {ax} of x {list(x.shape)}")
    batch, outer, inner = x.shape[:bd], x.shape[bd:ax], x.shape[ax + 1:]
    out_shape = x.shape[:ax] + idx.shape[bd:] + inner
    if n == 0:   # every index is out of range (lazy indices): zeros
        return T.const(0, out_shape, x.dtype)
    b, k = math.prod(batch), math.prod(idx.shape[bd:])
    xs = T.reshape(x, (b, math.prod(outer), n, math.prod(inner)))
    g = T.gather(xs, T.reshape(idx, (b, k)))
    return T.reshape(g, out_shape)


def _scatter(y: Tensor, linear: Tensor, n: int, shape: tuple) -> Tensor:
    """y (K, *rest) summed into n rows at linear (K,) int32, reshaped to shape."""
    k = linear.shape[0]
    rest = math.prod(y.shape[1:])
    return T.reshape(T.scatter_add(T.reshape(y, (1, 1, k, rest)), T.reshape(linear, (1, k)), n), shape)


def unsorted_segment_sum(x: TensorLike, segment_ids: TensorLike, num_segments: int) -> Tensor:
    """tf.unsortedSegmentSum: out[s] = the sum of x[i] over i with segment_ids[i] == s, of shape
    [num_segments, *x.shape[1:]]. Negative ids are dropped (as in TF); the sum runs in
    increasing i, the same bits every run."""
    x = convert(x)
    ids, host = _index_tensor(segment_ids, "segmentIds", "unsortedSegmentSum")
    if not is_integer(num_segments) or num_segments < 0:
        raise ValueError(f"numSegments must be of dtype int (a count >= 0), got {num_segments!r}")
    if ids.ndim != 1 or x.ndim == 0 or ids.shape[0] != x.shape[0]:
        raise ValueError(f"unsortedSegmentSum: segmentIds must be 1-D with one id per row of x: "
                         f"x {list(x.shape)}, segmentIds {list(ids.shape)}")
    if host is not None:
        _check_range(host, num_segments, "unsortedSegmentSum", "segmentIds", "numSegments",
                     negatives=True)
    if x.dtype == dtypes.bool_:
        x = T.cast(x, dtypes.int32)
    return _scatter(x, ids, int(num_segments), (int(num_segments),) + x.shape[1:])


def _linear_index(idx: Tensor, host, shape: tuple, api: str, arg: str) -> Tensor:
    """Rows of idx (..., D) as flat indices into shape[:D], -1 where a component is out of
    range (so the row reads 0 and writes nowhere); host-known rows are checked first."""
    depth = idx.shape[-1]
    if depth > len(shape):
        raise ValueError(f"{api}: index innermost dimension length must be <= tensor rank; saw: "
                         f"{depth} vs. {len(shape)}")
    if host is not None:
        for j in range(depth):
            comp = host[..., j]
            bad = np.flatnonzero((comp < 0) | (comp >= shape[j]))
            if bad.size:
                at = tuple(int(i) for i in np.unravel_index(bad[0], comp.shape))
                raise ValueError(f"{api}: {arg}{list(at)} = {host[at].tolist()} is out of bounds: "
                                 f"component {j} is {int(comp.flat[bad[0]])}, not in "
                                 f"[0, {shape[j] - 1}] (shape {list(shape)})")
    rows = math.prod(idx.shape[:-1])
    flat = T.reshape(idx, (rows, depth))
    linear, ok, stride = None, None, 1
    for j in reversed(range(depth)):
        c = T.reshape(T.slice_(flat, ((0, rows, 1), (j, j + 1, 1))), (rows,))
        term = L.mul(c, stride) if stride != 1 else c
        linear = term if linear is None else L.add(linear, term)
        inside = L.logical_and(L.greater_equal(c, 0), L.less(c, shape[j]))
        ok = inside if ok is None else L.logical_and(ok, inside)
        stride *= shape[j]
    if linear is None:
        return T.const(0, (rows,), dtypes.int32)
    return L.where(ok, linear, -1)


def gather_nd(x: TensorLike, indices: TensorLike) -> Tensor:
    """tf.gatherND: out[i...] = x[indices[i..., :]], of shape indices.shape[:-1] +
    x.shape[indices.shape[-1]:]."""
    x = convert(x)
    idx, host = _index_tensor(indices, "indices", "gatherND")
    if idx.ndim < 1:
        raise ValueError("gatherND: indices must be at least rank 1 (the last axis indexes x)")
    depth = idx.shape[-1]
    linear = _linear_index(idx, host, x.shape, "gatherND", "indices")
    out_shape = idx.shape[:-1] + x.shape[depth:]
    n = math.prod(x.shape[:depth])
    if n == 0 or math.prod(out_shape) == 0:
        return T.const(0, out_shape, x.dtype)
    g = T.gather(T.reshape(x, (1, 1, n, math.prod(x.shape[depth:]))),
                 T.reshape(linear, (1, linear.shape[0])))
    return T.reshape(g, out_shape)


def scatter_nd(indices: TensorLike, updates: TensorLike, shape: Sequence[int]) -> Tensor:
    """tf.scatterND: zeros of shape with updates added at indices (duplicates add up), of
    updates.shape == indices.shape[:-1] + shape[indices.shape[-1]:]."""
    idx, host = _index_tensor(indices, "indices", "scatterND")
    updates = convert(updates)
    shape = tuple(int(s) for s in shape)
    if idx.ndim < 1:
        raise ValueError("scatterND: indices must be at least rank 1 (the last axis indexes the output)")
    depth = idx.shape[-1]
    want = idx.shape[:-1] + shape[depth:]
    if updates.shape != want:
        raise ValueError(f"scatterND: updates has shape {list(updates.shape)}, but indices "
                         f"{list(idx.shape)} and shape {list(shape)} need {list(want)} "
                         "(indices.shape[:-1] + shape[indices.shape[-1]:])")
    linear = _linear_index(idx, host, shape, "scatterND", "indices")
    if updates.dtype == dtypes.bool_:
        updates = T.cast(updates, dtypes.int32)
    n = math.prod(shape[:depth])
    rows = linear.shape[0]
    return _scatter(T.reshape(updates, (rows,) + shape[depth:]), linear, n, shape)


# --- t[idx] and t[mask] with host-known arrays --------------------------------------------------


def getitem(x: Tensor, index: Any) -> Tensor:
    """Basic indexing (ints, slices, None, ...), and, as the only index, a host-known integer
    array (t[[2, 0]]: a gather along axis 0, negative entries counting from the end) or a
    boolean mask over the leading axes (t[mask]: the selected elements, a shape known now)."""
    array = index if isinstance(index, (list, np.ndarray)) else None
    if array is None:
        return _basic_getitem(x, index)
    x = convert(x)
    host = np.asarray(array)
    if host.dtype == np.bool_:
        if host.ndim == 0 or host.shape != x.shape[:host.ndim]:
            raise IndexError(f"Boolean mask of shape {list(host.shape)} does not match the leading "
                             f"axes of a tensor of shape {list(x.shape)}")
        lead = math.prod(x.shape[:host.ndim])
        flat = T.reshape(x, (lead,) + x.shape[host.ndim:])
        return gather(flat, np.flatnonzero(host).astype(np.int32))
    if host.size and host.dtype.kind not in "iu":
        raise IndexError(f"Arrays used as indices must be of integer or boolean type, got {host.dtype}")
    if x.ndim == 0:
        raise IndexError("Too many indices for a scalar tensor")
    d = x.shape[0]
    bad = np.flatnonzero((host < -d) | (host >= d))
    if bad.size:
        raise IndexError(f"Index {int(host.flat[bad[0]])} is out of bounds for axis 0 with size {d} "
                         f"(shape {list(x.shape)})")
    return gather(x, np.where(host < 0, host + d, host).astype(np.int32))
