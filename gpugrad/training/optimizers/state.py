"""Optimizer state and the memory rules of in-place updates: per-variable slots, retiring a
variable's leaf before its buffer is updated, host copies for get_weights / set_weights.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

from gpugrad.core import dtypes
from gpugrad.api.ops import scalar
from gpugrad.core.tensor import Tensor, leaf, variable_leaf
from gpugrad.api.variables import Variable


__all__ = ['SlotState', 'address_range', 'contiguous_buffer', 'checked_count', 'host_array', 'int_scalar', 'named_map', 'retire_leaf', 'tensor_over']

# --- memory helpers ----------------------------------------------------------------------------


def address_range(buf) -> tuple[int, int]:
    start = buf.__array_interface__["data"][0] if isinstance(buf, np.ndarray) else buf.data.ptr
    return start, start + buf.nbytes


def contiguous_buffer(buf):
    return buf if buf.flags.c_contiguous else buf.copy()


def _refcount_of_a_local() -> int:
    probe = leaf(None, (), dtypes.float32)
    return sys.getrefcount(probe)


# How many references sys.getrefcount reports for an object held by one local variable only;
# measured rather than assumed, as interpreters differ (3.14 borrows references).
_ALONE = _refcount_of_a_local() if hasattr(sys, "getrefcount") else None


def retire_leaf(var: Variable) -> Tensor:
    """Give var a fresh leaf over its buffer before the buffer is updated in place (plan caches
    key graphs by node, as assign does), and return it: the step updates that leaf's buffer,
    not whatever var.value_node is by then (another thread may assign var meanwhile, and its
    new value must not be updated in place). A lazy expression built from the old value still
    holds the old leaf: it gets a private copy of the old values, as Variable promises."""
    old = var.value_node
    if _ALONE is not None and sys.getrefcount(old) <= _ALONE + 1:
        # Held by var (and this local) only: nothing can see the update but through var, so
        # the leaf stays, and with it the key of every graph over it (a training step's
        # variable_grads then finds its plan by key, without a walk; see autodiff).
        return old
    fresh = var.value_node = variable_leaf(old.buf, old.shape, old.dtype)
    if _ALONE is None or sys.getrefcount(old) > _ALONE:
        old.buf = old.buf.copy()
    return fresh


class SlotState:
    """One variable's optimizer state: its step count and its slot arrays, by slot name."""

    __slots__ = ("step", "arrays")

    def __init__(self, arrays: dict):
        self.step = 0
        self.arrays = arrays


def tensor_over(buf, shape: tuple, dtype: str) -> Tensor:
    """A computed tensor over a backend buffer (the buffer becomes the tensor's)."""
    return leaf(buf, shape, dtype)


def int_scalar(n: int) -> Tensor:
    return scalar(n, "int32")


def named_map(who: str, items: Any, api: str) -> Mapping[Any, Any]:
    """A mapping as it is; TF.js's list of {'name': ..., 'tensor': ...} as a dict by name."""
    if isinstance(items, Mapping):
        return items
    if not isinstance(items, (list, tuple)) or (
            len(items) == 2 and isinstance(items[1], Mapping) and isinstance(items[0], Tensor)):
        return items   # _prepare explains what is wrong with it
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) != {"name", "tensor"}:
            raise TypeError(
                f"{who}.{api}: item {i} of the list is {type(item).__name__} "
                f"{item if isinstance(item, Mapping) else ''}; each must be a dict "
                "{'name': variable name, 'tensor': tensor} (TF.js's NamedTensor).")
        if item["name"] in out:
            raise ValueError(f"{who}.{api}: the list names {item['name']!r} twice (items "
                             f"{[j for j, x in enumerate(items) if x.get('name') == item['name']]}).")
        out[item["name"]] = item["tensor"]
    return out


def checked_count(who: str, name: str, value: Any) -> int:
    """A step or iteration count: a non-negative integer (scalar tensor, array or int)."""
    array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if array.shape != () or array.dtype.kind not in "iuf" or not np.isfinite(array) \
            or array != np.floor(array) or array < 0:
        raise ValueError(f"{who}: {name!r} must be a non-negative integer scalar, got "
                         f"{array.dtype} of shape {list(array.shape)}: {array.tolist()!r}.")
    return int(array)


def host_array(who: str, name: str, value: Any, var: Variable) -> np.ndarray:
    """value as a C-contiguous host copy, checked to have var's shape and dtype exactly (no
    silent casts: restored state is bitwise what was saved)."""
    if isinstance(value, Tensor):
        dtype, array = value.dtype, value.numpy()
    else:
        array = np.asarray(value)
        dtype = array.dtype.name
    if tuple(array.shape) != tuple(var.shape):
        raise ValueError(f"{who}: {name!r} has shape {list(array.shape)} but variable {var.name!r} "
                         f"has shape {list(var.shape)}; the weights belong to another model.")
    if dtype != var.dtype:
        raise TypeError(f"{who}: {name!r} is {dtype} but variable {var.name!r} is {var.dtype}; "
                        f"cast it to {var.dtype} first.")
    return np.array(array, dtype=dtypes.NUMPY[var.dtype], copy=True, order="C")


