"""Tensor: a node of the lazy graph, realized into a backend buffer on demand.

Every op computes its shape and dtype at once and raises there; kernels run only when a
value is read (``numpy()``, ``item()``, printing, ``realize()``) or ``variable_grads`` returns.
Nodes are numbered in creation order, so the id order is a topological order and the
autodiff walk can tell which nodes a function created (ids after its start).
"""
from __future__ import annotations

import collections
import contextlib
import math
import threading
import weakref
from typing import Any, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import primitives as P
from gpugrad.core.nodes import NO_OP, Node, configure_tracking, ids, make_leaf, tracked_leaf
from gpugrad.core.snippets import numpy_function


Shape = tuple


class _Trace(threading.local):
    """Per-thread state of the gradient calls running on this thread.

    depth: how many gradient calls are running their f (nested calls count each).
    pins: while a gradient call runs, id(variable) -> (variable, [its leaves]): the value each
    variable had when this thread first read it in the call (and the values this thread
    assigned since). Every read of a variable in the call returns the same leaf, whatever
    other threads assign meanwhile, and the leaves are the targets of the gradient."""

    depth = 0
    pins = None


trace = _Trace()


def shape_str(shape: Sequence[int]) -> str:
    """TF.js writes shapes joined by commas: [2, 3] -> '2,3', a scalar -> ''."""
    return ",".join(str(d) for d in shape)


class Tensor(Node):
    """An n-dimensional array in a backend's memory, or a lazy op that computes one.

    Its fields and structural key are the node's (gpugrad/core/nodes.py):
    Tensor(op, src, arg, shape, dtype)."""

    __slots__ = ()
    __array_priority__ = 1000  # numpy defers ``ndarray + Tensor`` to Tensor.__radd__

    # --- reading values -------------------------------------------------------------
    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def _node(self) -> "Tensor":
        return self

    # Reading values (realize, data_buffer, numpy, item, print, repr, ...) needs the engine
    # and a backend, layers above this one: gpugrad/api/reading.py installs those methods.

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a rank-0 tensor")
        return self.shape[0]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"The truth value of a tensor with shape {list(self.shape)} is ambiguous; "
                "use .any()-style reductions (tf.max) or compare its item().")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out.astype(dtype) if dtype is not None else out

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    __hash__ = object.__hash__

    @property
    def __cuda_array_interface__(self) -> dict:
        buf = self.data_buffer()
        try:
            return buf.__cuda_array_interface__
        except AttributeError:
            raise AttributeError("this tensor lives in host memory (numpy backend)") from None

    def __dlpack__(self, **kwargs):
        return self.data_buffer().__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.data_buffer().__dlpack_device__()


class DisposedTensor(Tensor):
    """What a Tensor becomes when disposed (its class is swapped, so the ops' fast paths, which
    test ``x.__class__ is Tensor``, fall through to convert() and raise here, at no cost to
    live tensors). Shape and dtype stay readable, as in TF.js; the graph node itself is
    unchanged, so lazy tensors built from it still compute (see gpugrad/api/memory.py)."""

    __slots__ = ()

    def _node(self) -> Tensor:
        raise ValueError(
            f"Tensor is disposed. (a {self.dtype} tensor of shape {list(self.shape)}, released by "
            "dispose() or by the tf.tidy() it was made in; return it from the tidy or tf.keep() "
            "it to use it afterwards.)")

    def dispose(self) -> None:
        pass  # disposing twice is harmless, as in TF.js

    def __repr__(self) -> str:
        return f"<gpugrad.Tensor shape={list(self.shape)}, dtype={self.dtype}, disposed>"


class ReadWriteLock:
    """Plans read variable buffers (many at once); optimizers update them in place. A writer
    waits for the readers running and holds new ones off (so it is not starved); readers
    never wait for each other."""

    __slots__ = ("_lock", "_cond", "_readers", "_writing", "_waiting")

    def __init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # One entry per running reader. A deque's append and pop are atomic, so a reader
        # counts itself without taking the lock (every cached gradient call reads): it counts
        # itself first and then looks for a writer, while a writer announces itself (under
        # the lock) and then waits for the count to drain, so one of the two always sees the
        # other.
        self._readers = collections.deque()
        self._writing = False
        self._waiting = 0

    # (core/_nodes.c's run_cached does what acquire_read and release_read do, in C: a change
    # here is made there too)
    def acquire_read(self) -> None:
        self._readers.append(None)
        if self._writing or self._waiting:
            self._read_after_writer()

    def _read_after_writer(self) -> None:
        with self._cond:
            self._readers.pop()          # not counted while it waits...
            self._cond.notify_all()      # ...which a writer waiting on the count must hear
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers.append(None)   # (writers change their flags under the lock)

    def release_read(self) -> None:
        self._readers.pop()
        if self._waiting:
            self._wake_writers()

    def _wake_writers(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @contextlib.contextmanager
    def reading(self):
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextlib.contextmanager
    def writing(self):
        with self._cond:
            self._waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


buffers_lock = ReadWriteLock()   # plans read leaf buffers; optimizers write them in place


# --- the live-tensor registry (tf.memory(), tf.tidy()) -----------------------------------------

# Every tensor that holds a buffer, weakly, keyed by identity: the registry never keeps a tensor
# alive, so garbage collection frees what nobody holds. Not a WeakSet: its lookups compare
# tensors with ==, which is elementwise. Adding takes no lock (it is on the path of every
# realization, and one dict store is atomic under the GIL).
# The weak references have no callback: a Python callback per collected tensor cost as much as
# the rest of tracking it. A dead entry stays until its id is reused (CPython soon hands a
# collected tensor's memory, and so its id, to a new one) or until a sweep, which runs when the
# table has doubled since the last one, so it costs O(1) per tracked tensor.
_live: "dict[int, weakref.ref]" = {}
_sweep_at = [1024]
_weak = weakref.ref


def _sweep(live: dict = _live) -> None:
    for k, ref in list(live.items()):   # a C-level copy: safe while other threads add
        if ref() is None and live.get(k) is ref:
            live.pop(k, None)   # (not del: another thread's sweep may have dropped it since)
    _sweep_at[0] = max(1024, 2 * len(live))


# Per thread: the open tf.tidy() scopes, innermost last (gpugrad/api/memory.py). open_scopes[0]
# counts them over all threads, so that track() skips the thread-local lookup (which costs
# more than the rest of track) whenever no tidy is open anywhere, the common case.
tidy_scopes = threading.local()
open_scopes = [0]


def track(t: Tensor, scoped: bool = True) -> None:
    """Record that t now holds a buffer: tf.memory() counts it, and the innermost tidy scope
    of this thread that was open when t was created disposes it (unless scoped is False:
    variables' values live outside tidy, as in TF.js)."""
    # An entry already under t's id is t's own weak reference (weakref.ref returns that same
    # object again) or a dead one left by a collected tensor: either is replaced.
    _live[id(t)] = _weak(t)
    if len(_live) > _sweep_at[0]:
        _sweep()
    if scoped and open_scopes[0]:
        scopes = getattr(tidy_scopes, "stack", None)
        if scopes:
            for scope in reversed(scopes):
                if t.id >= scope.start:
                    scope.tracked.append(weakref.ref(t))
                    break


configure_tracking(_live, _sweep_at, open_scopes, track)


def untrack(t: Tensor) -> None:
    _live.pop(id(t), None)


def live_tensors() -> list:
    refs = list(_live.values())   # one C-level copy: safe while other threads add
    return [t for t in (r() for r in refs) if t is not None and t.buf is not None]


class WeakIdDict:
    """A mapping keyed by the identity of objects it holds weakly (an entry goes when its key
    is collected). weakref.WeakKeyDictionary compares keys with ==, which is elementwise for
    tensors (and False for NaN), so it cannot key tensors or variables."""

    __slots__ = ("_data",)

    def __init__(self):
        self._data: dict = {}   # id(key) -> (weakref to key, value)

    def get(self, key, default=None):
        entry = self._data.get(id(key))
        return entry[1] if entry is not None and entry[0]() is key else default

    def __getitem__(self, key):
        entry = self._data.get(id(key))
        if entry is None or entry[0]() is not key:
            raise KeyError(key)
        return entry[1]

    def __setitem__(self, key, value) -> None:
        data, k = self._data, id(key)

        def drop(ref, data=data, k=k):
            entry = data.get(k)
            if entry is not None and entry[0] is ref:
                del data[k]

        entry = data.get(k)
        ref = entry[0] if entry is not None and entry[0]() is key else weakref.ref(key, drop)
        data[k] = (ref, value)

    def __contains__(self, key) -> bool:
        entry = self._data.get(id(key))
        return entry is not None and entry[0]() is key

    def __len__(self) -> int:
        return sum(1 for ref, _ in list(self._data.values()) if ref() is not None)

    def items(self) -> list:
        """(key, value) pairs of the keys still alive."""
        return [(k, v) for k, v in ((ref(), v) for ref, v in list(self._data.values())) if k is not None]


# --- leaves -----------------------------------------------------------------------------

def leaf(buf: Any, shape: tuple, dtype: str, tracked: bool = True) -> Tensor:
    """The one constructor of realized leaves: a tensor over a backend buffer. tf.memory()
    counts it and an open tf.tidy() disposes it, unless tracked is False (a variable's value,
    tracked outside tidy scopes; an engine-owned constant)."""
    return tracked_leaf(Tensor, buf, shape, dtype) if tracked else make_leaf(Tensor, buf, shape, dtype)


def variable_leaf(buf: Any, shape: tuple, dtype: str) -> Tensor:
    """A leaf holding a variable's value: counted by tf.memory() but never disposed by a
    tf.tidy() (variables live outside tidy scopes, as in TF.js)."""
    out = leaf(buf, shape, dtype, tracked=False)
    track(out, scoped=False)
    return out


def const(value: Any, shape: tuple, dtype: str) -> Tensor:
    """A tensor filled with one value; kept symbolic so kernels inline it."""
    return Tensor("const", (), held_value(value, dtype), tuple(shape), dtype)


def held_value(value: Any, dtype: str) -> Any:
    """value as a tensor of dtype holds it (a Python number), or raises where it does not fit."""
    cls = value.__class__
    if (cls is float or cls is int) and value == value:
        # x * 2.0, x ** 2, 1 - x in f on every call: the value as dtype holds it, looked up
        # (numpy's scalar round trip costs more than the rest of the op). Zeros by repr (0.0
        # and -0.0 are == and hash alike); not NaN (never equal to itself).
        k = (dtype, cls, value if value else repr(value))
        held = _held.get(k)
        if held is None:
            held = _hold(value, dtype)
            if len(_held) >= 4096:
                _held.clear()
            _held[k] = held
        return held
    return _hold(value, dtype)


_held: dict = {}


def _hold(value: Any, dtype: str) -> Any:
    if dtype == dtypes.int32 and value.__class__ is not int and value.__class__ is not bool \
            or value.__class__ is int and not -2**31 <= value < 2**31:
        dtypes.check_fits(value, dtype, "constant")  # np.int32() would wrap numpy integers
    return dtypes.NUMPY[dtype].type(value).item()


def is_const(x: Tensor, value: Any = None) -> bool:
    return x.op == "const" and x.buf is None and (value is None or x.arg == value)


# --- primitive constructors: shape and dtype rules, checks, constant folding -------------

def elementwise(op: str, srcs: tuple, dtype: str, out_dtype: str | None = None) -> Tensor:
    """An elementwise primitive over operands of one shape and compute dtype ``dtype``."""
    shape = srcs[0].shape
    out = out_dtype or dtype
    for s in srcs:
        if s.op != "const" or s.buf is not None:
            return Tensor(op, srcs, None, shape, out)
    # constants only: folded
    fn = numpy_function(op, len(srcs), dtype)
    with np.errstate(all="ignore"):
        value = fn(*(dtypes.NUMPY[s.dtype].type(s.arg) for s in srcs))
    return const(np.asarray(value).astype(dtypes.NUMPY[out]).item(), shape, out)


def same(x: Tensor) -> Tensor:
    """What an op returns when it is the identity for its arguments (reshape to the same
    shape, x * 1, a reduction over no axes, ...). Outside gradient calls that is x itself.
    While a gradient call runs f it is a new "identity" node over x: returning x would make
    y = f(x) the input itself, which is "not connected" to x, while TF.js (where every op
    makes a node) gives dy. The scheduler reads identity nodes as their input, so they cost
    nothing in a kernel."""
    if trace.depth == 0:
        return x
    return Tensor("identity", (x,), None, x.shape, x.dtype)


def cast(x: Tensor, dtype: str) -> Tensor:
    if x.dtype == dtype:
        return same(x)
    if is_const(x):
        return const(np.asarray(x.arg, dtypes.NUMPY[x.dtype]).astype(dtypes.NUMPY[dtype]).item(),
                     x.shape, dtype)
    return Tensor(P.CAST, (x,), dtype, x.shape, dtype)


def reduce(op: str, x: Tensor, axes: tuple) -> Tensor:
    """Reduce over sorted, non-negative axes, keeping them as size 1."""
    if not axes:
        return same(x) if op != "argmax" else const(0, x.shape, dtypes.int32)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if op == "argmax":
        return Tensor(op, (x,), axes, shape, dtypes.int32)
    return Tensor(op, (x,), axes, shape, x.dtype)


def reshape(x: Tensor, shape: tuple) -> Tensor:
    if shape == x.shape:
        return same(x)
    if is_const(x):
        return const(x.arg, shape, x.dtype)
    if x.op == "reshape" and x.buf is None:
        x = x.src[0]
        if shape == x.shape:
            return same(x)
    return Tensor("reshape", (x,), shape, shape, x.dtype)


def permute(x: Tensor, perm: tuple) -> Tensor:
    if perm == tuple(range(len(perm))):
        return same(x)
    shape = tuple(x.shape[p] for p in perm)
    if is_const(x):
        return const(x.arg, shape, x.dtype)
    return Tensor("permute", (x,), perm, shape, x.dtype)


def expand(x: Tensor, shape: tuple) -> Tensor:
    """Broadcast size-1 axes of x (same rank) to shape."""
    if shape == x.shape:
        return same(x)
    if is_const(x):
        return const(x.arg, shape, x.dtype)
    return Tensor("expand", (x,), shape, shape, x.dtype)


def slice_(x: Tensor, slices: tuple) -> Tensor:
    """slices: one normalized (start, stop, step) per axis."""
    shape = tuple(len(range(*s)) for s in slices)
    if shape == x.shape and all(s[0] == 0 and s[2] == 1 for s in slices):
        return same(x)
    if is_const(x):
        return const(x.arg, shape, x.dtype)
    return Tensor("slice", (x,), slices, shape, x.dtype)


def unslice(x: Tensor, shape: tuple, slices: tuple) -> Tensor:
    """Place x at ``slices`` of a zero tensor of ``shape`` (the adjoint of slice)."""
    if shape == x.shape and all(s[0] == 0 and s[2] == 1 for s in slices):
        return same(x)
    return Tensor("unslice", (x,), (shape, slices), shape, x.dtype)


def matmul(a: Tensor, b: Tensor) -> Tensor:
    shape = a.shape[:-1] + b.shape[-1:]
    return Tensor(P.MATMUL, (a, b), None, shape, a.dtype)


def gather(x: Tensor, indices: Tensor) -> Tensor:
    """x (B, O, N, C) at int32 indices (B, K) along N -> (B, O, K, C); 0 where out of range."""
    b, o, _, c = x.shape
    if indices.shape[0] != b or indices.dtype != dtypes.int32 or len(indices.shape) != 2:
        raise ValueError(f"gather: indices {shape_str(indices.shape)} {indices.dtype} do not fit "
                         f"x {shape_str(x.shape)} (want int32 of shape [{b}, K])")
    return Tensor("gather", (x, indices), None, (b, o, indices.shape[1], c), x.dtype)


def scatter_add(y: Tensor, indices: Tensor, n: int) -> Tensor:
    """The adjoint of gather: y (B, O, K, C) summed into (B, O, n, C) at int32 indices (B, K)."""
    b, o, k, c = y.shape
    if indices.shape != (b, k) or indices.dtype != dtypes.int32:
        raise ValueError(f"scatter_add: indices {shape_str(indices.shape)} {indices.dtype} do not "
                         f"fit y {shape_str(y.shape)} (want int32 of shape [{b}, {k}])")
    return Tensor("scatter_add", (y, indices), int(n), (b, o, int(n), c), y.dtype)


def scan(op: str, x: Tensor, exclusive: bool, reverse: bool) -> Tensor:
    """cumsum or cumprod of x (O, N, C) along N."""
    if len(x.shape) != 3:
        raise ValueError(f"{op}: the primitive scans x of shape [O, N, C], got {shape_str(x.shape)}")
    return Tensor(op, (x,), (bool(exclusive), bool(reverse)), x.shape, x.dtype)


def stop_gradient(x: Tensor) -> Tensor:
    return Tensor(P.STOP_GRADIENT, (x,), None, x.shape, x.dtype)
