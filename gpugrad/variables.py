"""Variables and the process-wide name registry (TF.js ``ENGINE.registeredVariables``)."""
from __future__ import annotations

import functools
import threading
import weakref
from typing import Any

from . import dtypes
from .tensor import Tensor, shape_str, variable_leaf

_lock = threading.Lock()
_next_auto_name = 0
# name -> Variable; weak so that the registry never keeps a variable alive.
_registry: "weakref.WeakValueDictionary[str, Variable]" = weakref.WeakValueDictionary()
_order: dict[str, None] = {}   # registration order, for the default var_list


class Variable(Tensor):
    """A named, mutable tensor. Ops read its current value; ``assign`` swaps in a new one, so
    a lazy expression built before an assign still sees the value it was built from."""

    __slots__ = ("name", "trainable", "value_node", "disposed")

    def __init__(self, value: Tensor, trainable: bool, name: str):
        super().__init__("variable", (), None, value.shape, value.dtype)
        self.value_node = value
        self.trainable = bool(trainable)
        self.name = name
        self.disposed = False

    def _node(self) -> Tensor:
        if self.disposed:
            raise ValueError(f"Tensor is disposed. (variable {self.name!r} was disposed)")
        return self.value_node

    def assign(self, new_value: Any) -> "Variable":
        from .ops import convert
        if self.disposed:
            self._node()  # raises Tensor is disposed.
        new = convert(new_value)._node()
        if new.dtype != self.dtype:
            raise TypeError(
                f"dtype of the new value ({new.dtype}) and previous value ({self.dtype}) must match "
                f"(variable {self.name!r}); cast it with tf.cast(value, {self.dtype!r}).")
        if new.shape != self.shape:
            raise ValueError(
                f"shape of the new value ({shape_str(new.shape)}) and previous value "
                f"({shape_str(self.shape)}) must match (variable {self.name!r}: "
                f"{list(new.shape)} vs {list(self.shape)}).")
        new.realize()
        # A leaf of its own, so that no two variables (or a variable and a tensor) are one
        # node of the graph, over a private copy of the buffer: optimizers update a
        # variable's buffer in place, which must not change any other tensor.
        self.value_node = variable_leaf(new.buf.copy(), new.shape, new.dtype)
        return self

    def dispose(self) -> None:
        with _lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]
                _order.pop(self.name, None)
        self.disposed = True
        # Drop the value: its memory is freed unless a lazy tensor that read it still needs it
        # (that tensor's graph holds the value leaf, so it still computes).
        self.value_node = None

    def __repr__(self) -> str:
        return f"<gpugrad.Variable {self.name!r} shape={list(self.shape)} dtype={self.dtype} trainable={self.trainable}>"


def variable(initial_value: Any, trainable: bool = True, name: str | None = None,
             dtype: Any = None) -> Variable:
    """tf.variable: a trainable, registered variable holding a copy of initial_value."""
    from .ops import cast, convert
    value = convert(initial_value, dtype)._node()
    if dtype is not None:
        value = cast(value, dtypes.canonical(dtype))._node()
    value.realize()
    # A private copy: optimizers update a variable's buffer in place (see Variable.assign).
    leaf = variable_leaf(value.buf.copy(), value.shape, value.dtype)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"variable name must be a string, got {type(name).__name__}")
    global _next_auto_name
    with _lock:
        if not name:
            name = str(_next_auto_name)
            _next_auto_name += 1
        if _registry.get(name) is not None:
            raise ValueError(
                f"Variable with name {name} was already registered; pick another name or "
                "dispose() the variable that holds it.")
        v = Variable(leaf, trainable, name)
        _registry[name] = v
        _order[name] = None
    return v


@functools.lru_cache(maxsize=4096)
def _is_array_index(name: str) -> bool:
    """JS orders keys that are canonical array indices (0 .. 2^32 - 2) first."""
    return name.isdigit() and name.isascii() and (name == "0" or not name.startswith("0")) \
        and int(name) < 2**32 - 1


def _js_key_order(names):
    """JS object key order: array-index names ascending, then the rest as given."""
    ints = sorted((n for n in names if _is_array_index(n)), key=int)
    return ints + [n for n in names if not _is_array_index(n)]


def registered_variables() -> list[Variable]:
    with _lock:
        names = [n for n in _order if n in _registry]
        for n in list(_order):
            if n not in _registry:
                del _order[n]
        found = [(n, _registry.get(n)) for n in names]
    by_name = {n: v for n, v in found if v is not None}
    return [by_name[n] for n in _js_key_order(list(by_name))]


def dispose_variables() -> None:
    """tf.disposeVariables: unregister every variable."""
    with _lock:
        _registry.clear()
        _order.clear()
