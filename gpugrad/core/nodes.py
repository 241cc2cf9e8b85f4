"""Graph nodes: the fields every tensor carries, and its structural key, built as it is made.

Tracing f builds one node per op, so building a node is most of what a cached gradient call
costs at small sizes. The node is therefore made by a small C type where the extension
``gpugrad.core._nodes`` was compiled at install (``_nodes.c``), and by the Python class
``PyNode`` otherwise (a source checkout on PYTHONPATH, a machine without a C compiler, or
GPUGRAD_PURE_PYTHON=1). Both compute the same fields from the same ``ids`` counter and the same
key table, so their keys are interchangeable (tests/test_nodes.py builds each structure with
both and compares).

Structural keys: every node carries ``key``, an int naming its structure, computed when it is
made from its op, arg, dtype, shape and its sources' keys (hash-consing: equal structures get
the same int, so a key is compared in O(1) and no tuple tree is ever hashed again). A leaf's key
is its own id: a key names the very leaves a graph reads, so a plan cached under it knows its
input tensors. Ids and interned keys come from one counter and are never reused, so a key that
is dropped from the table (it is cleared when large) can only miss, never match another
structure. A custom gradient (its function may close over anything) gets a fresh key, so a
graph over it never matches a cached one; so does a node whose arg cannot be hashed. ``lo`` is
the smallest id among the node and its unrealized-at-creation op ancestors (NO_OP for leaves
and constants): a gradient call whose result has lo >= its start created every op of its graph
itself. The key identifies the expression tree: two graphs that differ only in which equal
subexpressions they share get one key (their values are the same expressions of the same
leaves; the plans deduplicate equal instructions anyway).
"""
from __future__ import annotations

import itertools
import os
from typing import Any, Callable

from gpugrad.core import dtypes
from gpugrad.core.caches import Table

ids = itertools.count()   # node ids: creation order, so a topological order
NO_OP = 1 << 62


class _KeyTable(Table):
    """The key table; clearing it also empties _nodes.c's cache in front of it, which must
    only ever hold what the table holds."""

    def clear(self) -> None:
        super().clear()
        if _c is not None:
            _c.forget_keys()


_c = None   # the compiled module, once imported (below)
_keys = _KeyTable("structural keys", 1 << 17)
_keys_get = _keys.get   # (cleared in place, never replaced)


def _intern(k: tuple) -> int:
    if len(_keys) >= _keys.limit:
        _keys.clear()
    return _keys.setdefault(k, next(ids))


def const_key(arg: Any, shape: tuple, dtype: str) -> int:
    """The key of a constant: by repr where == would confuse values (0.0 and -0.0) or never
    match (NaN)."""
    k = ("C", arg if arg and arg == arg else repr(arg), shape, dtype)
    key = _keys_get(k)
    return key if key is not None else _intern(k)


class PyNode:
    """The node in Python: the reference for _nodes.c, which computes the same fields."""

    __slots__ = ("op", "src", "arg", "shape", "dtype", "buf", "id", "key", "lo", "__weakref__")

    def __init__(self, op: str, src: tuple, arg: Any, shape: tuple, dtype: str):
        self.op = op
        self.src = src
        self.arg = arg
        self.shape = shape
        self.dtype = dtype
        self.buf = None   # a realized tensor is made by make_leaf, or realized by the engine
        self.id = i = next(ids)
        if src:
            if len(src) == 2:
                a, b = src
                k = (op, arg, dtype, shape, a.key, b.key)
                lo = a.lo
                if b.lo < lo:
                    lo = b.lo
            elif len(src) == 1:
                a = src[0]
                k = (op, arg, dtype, shape, a.key)
                lo = a.lo
            else:
                k = (op, arg, dtype, shape, *[s.key for s in src])
                lo = min([s.lo for s in src])
            self.lo = i if i < lo else lo
            try:
                key = _keys_get(k)
            except TypeError:     # an unhashable arg (a list, say): a key of its own
                key = i
            if key is None:
                # A custom gradient's function and saved tensors: never a shared key (nor
                # held by the table)
                key = i if op == "custom_grad" else _intern(k)
            self.key = key
        elif op == "const":
            self.lo = NO_OP
            self.key = const_key(arg, shape, dtype)
        else:
            self.lo = NO_OP
            self.key = i


def py_make_leaf(cls: type, buf: Any, shape: tuple, dtype: str) -> PyNode:
    """A realized leaf of class cls over buf: op "buffer", no sources, its key its id."""
    t = object.__new__(cls)
    t.op = "buffer"
    t.src = ()
    t.arg = None
    t.shape = shape
    t.dtype = dtype
    t.buf = buf
    t.id = t.key = next(ids)
    t.lo = NO_OP
    return t


def py_buffers_of(refs) -> list | None:
    """The buffer of the leaf each weak reference names; None where one of them is collected
    or disposed (its buffer dropped)."""
    bufs = []
    for ref in refs:
        leaf = ref()
        if leaf is None:
            return None
        buf = leaf.buf
        if buf is None:
            return None
        bufs.append(buf)
    return bufs


_track: Callable | None = None   # tensor.py's track, once configure_tracking ran


def py_tracked_leaf(cls: type, buf: Any, shape: tuple, dtype: str) -> PyNode:
    """py_make_leaf, registered by tensor.py's track (tf.memory(), tf.tidy())."""
    t = py_make_leaf(cls, buf, shape, dtype)
    _track(t)
    return t


def configure_tracking(live: dict, sweep_at: list, open_scopes: list, track: Callable) -> None:
    """tensor.py's live-tensor registry, for tracked_leaf (the C one does track's common case
    itself: see _nodes.c)."""
    global _track
    _track = track
    if COMPILED:
        _c.configure_tracking(live, sweep_at, open_scopes, track)


try:
    from gpugrad.core import _nodes as _c
except ImportError:   # not compiled: the Python node
    _c = None
if os.environ.get("GPUGRAD_PURE_PYTHON"):
    _c = None

COMPILED = _c is not None
if COMPILED:
    _c.configure(ids, _keys, _intern, NO_OP)
    Node = _c.Node
    make_leaf = _c.make_leaf
    tracked_leaf = _c.tracked_leaf
    buffers_of = _c.buffers_of
else:
    Node = PyNode
    make_leaf = py_make_leaf
    tracked_leaf = py_tracked_leaf
    buffers_of = py_buffers_of


def configure_variables(variable_cls: type, trace: Any) -> None:
    """How elementwise_op's C branch reads a variable inside a gradient call: the leaf this
    thread pinned for it (Variable._node's common case; every other case calls _node())."""
    if COMPILED:
        _c.configure_variables(variable_cls, trace)


def configure_replay(hot_plans: dict, run_plan_weak: Callable, ordered: Callable,
                     new_result: Callable, result_type: type, tensor_cls: type,
                     buffers_lock: Any, backends_globals: dict) -> Callable | None:
    """_nodes.c's replay, variable_grads's cached path (api/autodiff.py's _replay_python) in
    C, given what it calls; None where the node is not compiled. It runs a cached plan as
    run_plan_weak does, itself in the common case (see run_cached there): the lock
    (tensor.py's ReadWriteLock) and the backends module's globals (its current backend) are
    for that."""
    if not COMPILED:
        return None
    _c.configure_replay(hot_plans, run_plan_weak, ordered, new_result, result_type, tensor_cls,
                        buffers_lock, backends_globals)
    return _c.replay


KIND_ELEMENTWISE, KIND_SQUARE, KIND_REDUCE, KIND_POW = 0, 1, 2, 3   # (as in _nodes.c)


def elementwise_op(general: Callable, name: str, arity: int, out_bool: bool, needs_float: bool,
                   tensor_cls: type, kind: int = KIND_ELEMENTWISE, tables: tuple | None = None) -> Callable:
    """general, the Python function of an op, with its first branch taken in C where the node
    is compiled (general itself otherwise); it binds as a method as a function does. The
    branch (see _nodes.c): KIND_ELEMENTWISE, op name over tensors of one shape and float dtype,
    none constant; KIND_SQUARE, mul over (x, x); KIND_REDUCE, the reduction name of a float
    tensor over all its axes to a scalar, tables being (all axes, ones) by rank; KIND_POW, the
    elementwise branch and x ** 2 (the number 2) as mul over (x, x)."""
    if not COMPILED:
        return general
    op = _c.elementwise_op(general, name, arity, out_bool, needs_float, tensor_cls,
                           dtypes.FLOATS, dtypes.bool_, kind, tables)
    op.__name__ = general.__name__
    op.__qualname__ = general.__qualname__
    op.__doc__ = general.__doc__
    op.__module__ = general.__module__
    op.__wrapped__ = general   # inspect.signature and help() read the Python function
    return op
