"""Memory as in TF.js: tf.tidy, tf.keep, tf.dispose, tensor.dispose(), tf.memory().

gpugrad's tensors are lazy, so TF.js's rules need a reading for tensors that are not computed
yet. The rules:

* Garbage collection still frees what nobody holds; dispose and tidy only make it earlier.
  The registry of live tensors (gpugrad/core/tensor.py) holds them weakly.
* ``t.dispose()`` makes t unusable at once: any later use raises ``Tensor is disposed.``
  (naming its dtype and shape). Shape and dtype stay readable, as in TF.js.
* Disposing a lazy (uncomputed) tensor frees nothing (it holds no memory) and does not break
  lazy tensors built from it: their graph keeps its inputs and computes it inline.
* Disposing a computed tensor drops its buffer (on CuPy, back to the memory pool) once no
  other tensor shares it. A lazy tensor built from it that is still uncomputed recomputes it
  from its own inputs if it is an op's result; data made by tf.tensor & co. has no inputs, so
  computing such a dependent then raises ``Tensor is disposed.`` naming the lost input. So:
  compute what you need before disposing the data it reads (tidy does this for you).
* ``tf.tidy(fn)`` computes the tensors fn returns (in lists, tuples and dicts, nested) and
  those tf.keep() marked, then disposes every other tensor computed inside it, and so frees
  their memory; returned tensors belong to the enclosing tidy, if any. Tensors made inside
  but never computed hold no memory and stay usable. If fn raises, everything computed inside
  is disposed and the error propagates.
* Inside a function being differentiated (variable_grads, grad, ..., minimize) dispose() and
  tidy() defer to garbage collection: the gradient reads forward values (TF.js keeps them
  alive for the same reason), and they are freed with the gradient graph.
* Variables live outside tidy. ``v.dispose()`` unregisters v and drops its value; lazy
  tensors that read v keep the value they read.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from gpugrad.backends import current
from gpugrad.runtime.engine import realize
from gpugrad.core.tensor import DisposedTensor, Tensor, WeakIdDict, ids, live_tensors, open_scopes, tidy_scopes, trace, untrack

_kept_lock = threading.Lock()
_count_lock = threading.Lock()
# Tensors tf.keep() exempted: weak, so keeping never keeps a tensor alive; by identity (a
# WeakSet compares members with ==, which is elementwise for tensors).
_kept: "WeakIdDict[Tensor, bool]" = WeakIdDict()


class _Scope:
    __slots__ = ("start", "tracked", "kept")

    def __init__(self, start: int):
        self.start = start      # tensors with id >= start were created inside this scope
        self.tracked: list = []  # weakrefs to tensors computed inside
        self.kept: list = []    # tensors tf.keep() marked inside (computed at exit)


def _differentiating() -> bool:
    return trace.depth > 0   # a gradient call on this thread is running its f


def dispose_tensor(t: Tensor) -> None:
    """tensor.dispose(): the rules in this module's docstring."""
    if t.__class__ is not Tensor:
        if hasattr(t, "assign"):  # a Variable (or any subclass that manages itself)
            t.dispose()
        return  # already disposed
    if _differentiating():
        return
    if t.buf is not None:
        untrack(t)
        t.buf = None  # the backend array goes when no other tensor shares it
    t.__class__ = DisposedTensor


def _tensors_in(value: Any, out: list, depth: int = 0) -> list:
    """The tensors in value: a tensor, or lists, tuples (named too) and dict values, nested."""
    if depth > 100:
        raise ValueError("Containers nested more than 100 deep cannot be searched for tensors.")
    if isinstance(value, Tensor):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _tensors_in(v, out, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            _tensors_in(v, out, depth + 1)
    return out


def dispose(container: Any) -> None:
    """tf.dispose: dispose a tensor, or every tensor in lists, tuples and dicts (nested);
    Variables in them are disposed as by v.dispose()."""
    for t in _tensors_in(container, []):
        t.dispose()


def keep(result: Tensor) -> Tensor:
    """tf.keep: exempt result from being disposed by the tidy scopes it is made in."""
    if not isinstance(result, Tensor):
        raise TypeError(f"keep() takes a tensor, got {type(result).__name__}.")
    if result.__class__ is Tensor:
        with _kept_lock:
            _kept[result] = True
        scopes = getattr(tidy_scopes, "stack", None)
        if scopes:
            scopes[-1].kept.append(result)
    return result


def _is_kept(t: Tensor) -> bool:
    with _kept_lock:
        return t in _kept


def tidy(name_or_fn: Any, fn: Callable | None = None) -> Any:
    """tf.tidy(fn) or tf.tidy(name, fn): run fn, then dispose every tensor computed inside it
    except those it returns and those kept with tf.keep (the rules in this module's docstring)."""
    if fn is None:
        fn = name_or_fn
    elif not isinstance(name_or_fn, str):
        raise TypeError("When calling with two arguments, the first argument to tidy() must be a string")
    if not callable(fn):
        raise TypeError(f"Please provide a function to tidy() (got {type(fn).__name__}).")
    if _differentiating():
        return fn()
    stack = getattr(tidy_scopes, "stack", None)
    if stack is None:
        stack = tidy_scopes.stack = []
    scope = _Scope(next(ids))
    stack.append(scope)
    with _count_lock:
        open_scopes[0] += 1
    try:
        result = fn()
    except BaseException:
        _close(stack, scope)
        _end(scope, [])      # as TF.js: an error in fn disposes what fn computed
        raise
    _close(stack, scope)
    survivors = [t for t in _tensors_in(result, []) if t.__class__ is Tensor]
    # Compute what survives, in one plan, BEFORE disposing anything: a returned lazy tensor
    # may read tensors of this scope. It then belongs to the enclosing scope (if any).
    pending = [t for t in survivors + scope.kept if t.__class__ is Tensor and t.buf is None]
    computed_before = [t for t in survivors if t.buf is not None]
    try:
        if pending:
            realize(pending)
    except BaseException:
        _end(scope, [])
        raise
    _end(scope, survivors)
    if stack:  # those computed now were tracked by the parent already (track())
        parent = stack[-1]
        parent.tracked.extend(weakref.ref(t) for t in computed_before if t.id >= parent.start)
    return result


def _close(stack: list, scope: _Scope) -> None:
    stack.remove(scope)  # nested tidies have removed theirs, even when they raised
    with _count_lock:
        open_scopes[0] -= 1


def _end(scope: _Scope, survivors: list) -> None:
    spared = {id(t) for t in survivors}
    for ref in scope.tracked:
        t = ref()
        if t is not None and id(t) not in spared and not _is_kept(t):
            dispose_tensor(t)


def memory() -> dict:
    """tf.memory(): how many tensors hold buffers and how many bytes those buffers take, with
    both TF.js's camelCase keys and snake_case ones. Lazy tensors hold no memory and are not
    counted. On CuPy, the memory pool's own figures are added (as TF.js's WebGL backend adds
    numBytesInGPU)."""
    tensors = live_tensors()
    buffers = {}
    for t in tensors:
        buf = t.buf
        if buf is None:
            continue
        base = buf
        while getattr(base, "base", None) is not None:  # views share their base's memory
            base = base.base
        buffers[id(base)] = base
    num_bytes = sum(int(getattr(b, "nbytes", 0)) for b in buffers.values())
    reasons = [
        "num_bytes counts the buffers of computed tensors; lazy (uncomputed) tensors hold none.",
        "Optimizer state and the temporaries of a running plan are not tensors and are not counted.",
    ]
    out = {"num_tensors": len(tensors), "num_data_buffers": len(buffers), "num_bytes": num_bytes,
           "unreliable": True, "reasons": reasons}
    backend = current()
    if backend.name == "cupy":
        pool = backend.cupy.get_default_memory_pool()
        used, total = int(pool.used_bytes()), int(pool.total_bytes())
        out.update(num_bytes_in_gpu=used, num_bytes_in_gpu_allocated=total,
                   num_bytes_in_gpu_free=total - used)
    camel = {"num_tensors": "numTensors", "num_data_buffers": "numDataBuffers",
             "num_bytes": "numBytes", "num_bytes_in_gpu": "numBytesInGPU",
             "num_bytes_in_gpu_allocated": "numBytesInGPUAllocated",
             "num_bytes_in_gpu_free": "numBytesInGPUFree"}
    for snake, name in camel.items():
        if snake in out:
            out[name] = out[snake]
    return out

