"""Variables and the process-wide name registry (TF.js ``ENGINE.registeredVariables``)."""
from __future__ import annotations

import functools
import itertools
import threading
import weakref
from typing import Any

import numpy as np

from gpugrad.core import dtypes
from gpugrad.runtime.engine import realize
from gpugrad.api.ops import cast, convert
from gpugrad.core.nodes import configure_variables
from gpugrad.core.tensor import Tensor, buffers_lock, shape_str, trace, variable_leaf

_lock = threading.Lock()
_next_auto_name = 0
# name -> Variable; weak so that the registry never keeps a variable alive.
registry: "weakref.WeakValueDictionary[str, Variable]" = weakref.WeakValueDictionary()
_order: dict[str, None] = {}   # registration order, for the default var_list
_serials = itertools.count()   # registration order of each Variable object
# id -> weakref of every registered trainable variable, kept up to date on registration,
# dispose, collection and writes to .trainable, so that variable_grads can tell whether any
# is trainable without scanning the registry (which cost O(registered) per call).
_trainable: dict[int, weakref.ref] = {}




def _untrack(key: int, ref) -> None:
    # a weakref callback: no lock (it may run while this thread holds _lock)
    if _trainable.get(key) is ref:
        _trainable.pop(key, None)


def _track(v: "Variable") -> None:
    """Keep _trainable in step with v's registration and trainable flag."""
    key = id(v)
    if v._trainable and registry.get(v.name) is v:
        if key not in _trainable:
            _trainable[key] = weakref.ref(v, functools.partial(_untrack, key))
    else:
        _trainable.pop(key, None)


def any_trainable_registered() -> bool:
    return bool(_trainable)


def registered_count() -> int:
    return len(registry)


def is_registered(v: "Variable") -> bool:
    return registry.get(v.name) is v


class Variable(Tensor):
    """A named, mutable tensor. Ops read its current value; ``assign`` swaps in a new one, so
    a lazy expression built before an assign still sees the value it was built from."""

    __slots__ = ("name", "_trainable", "value_node", "disposed", "serial")

    def __init__(self, value: Tensor, trainable: bool, name: str):
        super().__init__("variable", (), None, value.shape, value.dtype)
        self.value_node = value
        self._trainable = bool(trainable)
        self.name = name
        self.disposed = False
        self.serial = next(_serials)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        _track(self)

    def _node(self) -> Tensor:
        """The leaf holding the current value; inside a gradient call, the one this thread
        read first (see tensor.trace): one consistent value per call."""
        if self.disposed:
            raise ValueError(f"Tensor is disposed. (variable {self.name!r} was disposed)")
        pins = trace.pins
        if pins is None:
            return self.value_node
        entry = pins.get(id(self))
        if entry is None:
            leaf = self.value_node
            pins[id(self)] = (self, [leaf])   # holds self: the id stays this variable's
            return leaf
        return entry[1][-1]

    def numpy(self) -> np.ndarray:
        """A copy of the current value: an optimizer updates the variable's buffer in place,
        and the array must neither change then nor write into the variable."""
        with buffers_lock.reading():
            out = super().numpy()
            return out if out.flags.writeable else out.copy()  # CuPy's get() is a fresh copy

    def assign(self, new_value: Any) -> "Variable":
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
        realize([new])
        # A leaf of its own, so that no two variables (or a variable and a tensor) are one
        # node of the graph, over a private copy of the buffer: optimizers update a
        # variable's buffer in place, which must not change any other tensor.
        with buffers_lock.reading():   # new may be a variable an optimizer is updating
            leaf = variable_leaf(new.buf.copy(), new.shape, new.dtype)
        self.value_node = leaf
        pins = trace.pins
        if pins is not None:  # assigned inside a gradient call: later reads here see it
            entry = pins.get(id(self))
            if entry is None:
                pins[id(self)] = (self, [leaf])
            else:
                entry[1].append(leaf)
        return self

    def dispose(self) -> None:
        with _lock:
            if registry.get(self.name) is self:
                del registry[self.name]
                _order.pop(self.name, None)
            _trainable.pop(id(self), None)
        self.disposed = True
        # Drop the value: its memory is freed unless a lazy tensor that read it still needs it
        # (that tensor's graph holds the value leaf, so it still computes).
        self.value_node = None

    def __repr__(self) -> str:
        return f"<gpugrad.Variable {self.name!r} shape={list(self.shape)} dtype={self.dtype} trainable={self.trainable}>"

    def __reduce__(self):
        raise TypeError(
            f"A variable ({self.name!r}) cannot be copied or pickled: it is a registered, named "
            "value that optimizers update in place. Copy its value instead (tf.variable(tf.clone(v)) "
            "makes a new variable of it, v.numpy() gives the array), or save variables with "
            "tf.save(path, variables) and tf.load.")


# Elementwise ops read a variable's pinned leaf in C where the node is compiled: as _node() does.
configure_variables(Variable, trace)


def variable(initial_value: Any, trainable: bool = True, name: str | None = None,
             dtype: Any = None) -> Variable:
    """tf.variable: a trainable, registered variable holding a copy of initial_value."""
    value = convert(initial_value, dtype)._node()
    if dtype is not None:
        value = cast(value, dtypes.canonical(dtype))._node()
    realize([value])
    # A private copy: optimizers update a variable's buffer in place (see Variable.assign).
    with buffers_lock.reading():   # value may be a variable an optimizer is updating
        leaf = variable_leaf(value.buf.copy(), value.shape, value.dtype)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"variable name must be a string, got {type(name).__name__}")
    global _next_auto_name
    with _lock:
        if not name:
            # skip names in use: a user who named a variable "3" must not make a later
            # tf.variable() fail (TF.js throws there)
            while True:
                name = str(_next_auto_name)
                _next_auto_name += 1
                if registry.get(name) is None:
                    break
        if registry.get(name) is not None:
            raise ValueError(
                f"Variable with name {name} was already registered; pick another name or "
                "dispose() the variable that holds it.")
        v = Variable(leaf, trainable, name)
        registry[name] = v
        _order[name] = None
        _track(v)
    return v


@functools.lru_cache(maxsize=4096)
def _is_array_index(name: str) -> bool:
    """JS orders keys that are canonical array indices (0 .. 2^32 - 2) first."""
    return name.isdigit() and name.isascii() and (name == "0" or not name.startswith("0")) \
        and int(name) < 2**32 - 1


def js_key_order(names):
    """JS object key order: array-index names ascending, then the rest as given."""
    ints = sorted((n for n in names if _is_array_index(n)), key=int)
    return ints + [n for n in names if not _is_array_index(n)]


def registered_variables() -> list[Variable]:
    with _lock:
        names = [n for n in _order if n in registry]
        for n in list(_order):
            if n not in registry:
                del _order[n]
        found = [(n, registry.get(n)) for n in names]
    by_name = {n: v for n, v in found if v is not None}
    return [by_name[n] for n in js_key_order(list(by_name))]


def dispose_variables() -> None:
    """tf.disposeVariables: unregister every variable."""
    with _lock:
        registry.clear()
        _order.clear()
        _trainable.clear()
