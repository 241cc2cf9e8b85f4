"""Selection: top_k (TF.js's topk), the k largest entries along the last axis.

Two compositions, both lazy and bitwise the same: for a few k out of a long row, k rounds of
argmax, each excluding the entries taken before (O(k n) per row, 2k reduction kernels); else
each entry's rank among all (O(n^2) comparisons per row, fused into one reduction). The
values are a gather at the indices, so they are differentiable (to any order: gather's
derivative is scatter_add, whose derivative is gather)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import tensor as T
from gpugrad.core.tensor import Tensor
from gpugrad.api.ops.convert import convert, tensor
from gpugrad.api.ops.elementwise import equal, greater, is_nan, less, logical_and, logical_not, logical_or, where
from gpugrad.api.ops.movement import concat
from gpugrad.api.ops.reductions import any, argmax, sum

__all__ = ['top_k']

TensorLike = Any
# Rounds of argmax when k <= ROUNDS_UP_TO and the row has at least ROW_PER_ROUND * k entries:
# beyond that the rounds' kernel count (2k reductions), or their k passes over a short row,
# cost more than the one O(n^2) reduction of the rank method. That method's comparisons are
# n^2 per row (materialized as n^2 booleans on numpy), so a long row with k > ROUNDS_UP_TO
# is slow: sort-based top_k would need a sort primitive, which gpugrad does not have yet.
ROUNDS_UP_TO = 64
ROW_PER_ROUND = 4


class TopK(tuple):
    """top_k's result: unpacks as (values, indices), and has TF.js's .values and .indices."""
    __slots__ = ()

    def __new__(cls, values: Tensor, indices: Tensor):
        return tuple.__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def top_k(x: TensorLike, k: int = 1, sorted: bool = True) -> TopK:  # noqa: A002 - TF.js name
    """TF.js's topk: the k largest entries along the last axis and their int32 indices, largest
    first, ties to the lower index (NaN counts as the largest value, as in argmax).

    ``sorted=False`` is accepted and gives the sorted order (one of the orders it allows)."""
    x = convert(x)
    if x.ndim == 0:
        raise ValueError("topk() expects the input to be of rank 1 or higher")
    n = x.shape[-1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"'k' passed to topk() must be an integer, got {k!r}")
    if k < 0:
        raise ValueError(f"'k' passed to topk() must be >= 0 but got {k}")
    if k > n:
        raise ValueError(f"'k' passed to topk() must be <= the last dimension ({n}) but got {k}")
    k = int(k)
    lead = x.shape[:-1]
    rows = math.prod(lead)
    flat = T.reshape(x, (rows, n))
    if 0 < k <= ROUNDS_UP_TO and n >= ROW_PER_ROUND * k and x.dtype != dtypes.bool_:
        indices = _indices_by_rounds(flat, k)
    else:
        indices = _indices_by_rank(flat, k)
    values = T.reshape(T.gather(T.reshape(flat, (rows, 1, n, 1)), indices), lead + (k,))
    return TopK(values, T.reshape(indices, lead + (k,)))


def _indices_by_rounds(flat: Tensor, k: int) -> Tensor:
    """Round m takes argmax over the entries not yet taken (NaN the largest, ties to the lower
    index, as argmax). Taken entries are replaced by the dtype's lowest value; when the rest
    are all that low too, argmax may land on a taken one, and the first entry not taken
    (the lowest-index tie) is the answer instead."""
    rows, n = flat.shape
    lowest = -2**31 if flat.dtype == dtypes.int32 else -np.inf
    positions = _constant(np.arange(n, dtype=np.int32).reshape(1, n))
    taken, picks = None, []
    for _ in range(k):
        pick = T.reshape(argmax(flat if taken is None else where(taken, lowest, flat), -1), (rows, 1))
        hit = equal(positions, pick)
        if taken is not None:
            first_free = T.reshape(argmax(logical_not(taken), -1), (rows, 1))
            pick = where(any(logical_and(hit, taken), -1, True), first_free, pick)
            hit = equal(positions, pick)
        taken = hit if taken is None else logical_or(taken, hit)
        picks.append(pick)
    return T.cast(concat(picks, -1), dtypes.int32)


def _indices_by_rank(flat: Tensor, k: int) -> Tensor:
    """Each entry's rank is the number of entries that come before it (larger, or equal at a
    lower index); index m is the position whose rank is m."""
    rows, n = flat.shape
    xi = T.expand(T.reshape(flat, (rows, n, 1)), (rows, n, n))     # [r, i, j] = x_i
    xj = T.expand(T.reshape(flat, (rows, 1, n)), (rows, n, n))     # [r, i, j] = x_j
    nan_i, nan_j = is_nan(xi), is_nan(xj)
    above = logical_or(greater(xj, xi), logical_and(nan_j, logical_not(nan_i)))
    tie = logical_or(equal(xj, xi), logical_and(nan_j, nan_i))
    positions = _constant(np.arange(n, dtype=np.int32))
    earlier = less(T.expand(T.reshape(positions, (1, n)), (n, n)),
                   T.expand(T.reshape(positions, (n, 1)), (n, n)))     # [i, j] = j < i
    rank = sum(logical_or(above, logical_and(tie, earlier)), -1)
    slots = _constant(np.arange(k, dtype=np.int32).reshape(k, 1))
    hit = equal(T.expand(T.reshape(rank, (rows, 1, n)), (rows, k, n)), slots)   # [r, m, i]
    return T.cast(sum(where(hit, positions, 0), -1), dtypes.int32)


def _constant(array: np.ndarray) -> Tensor:
    return tensor(array, dtype=dtypes.from_numpy(array.dtype))
