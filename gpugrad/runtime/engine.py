"""Realization: trace the pending graph, find or build its plan, run it on the backend."""
from __future__ import annotations

from typing import Any, Sequence

from gpugrad import backends
from gpugrad.compile.schedule import PlanCache, build_plan, structure
from gpugrad.core.nodes import buffers_of
from gpugrad.core.tensor import Tensor, leaf, buffers_lock, track

plans = PlanCache("plans")


def plan_for(outputs: Sequence[Tensor]):
    """(plan, leaves) for computing outputs: the plan from the cache where the structure is known."""
    key, leaves, nodes = structure(outputs)
    plan = plans.get(key)
    if plan is None:
        plan = build_plan(outputs, nodes)
        plans.put(key, plan)
    return plan, leaves


def run_plan(plan, leaves: Sequence[Tensor]) -> list:
    """Run plan over the leaves' buffers; every result is a buffer of its own.

    The read lock keeps optimizers from updating a variable's buffer in place while a plan
    reads it (they take the write lock): a plan sees each variable before or after an update,
    never half-way."""
    buffers_lock.acquire_read()
    try:
        # The buffers are read under the lock: an optimizer step gives a retired leaf a copy
        # of its buffer and updates the original in place.
        outs = backends.current().run(plan, [leaf.buf for leaf in leaves])
    finally:
        buffers_lock.release_read()
    return _own(plan, outs)


def run_plan_weak(plan, refs: Sequence[Any]) -> list | None:
    """run_plan over the leaves that weak references name (what a cache may hold), or None
    where one of them is collected or disposed."""
    buffers_lock.acquire_read()
    try:
        bufs = buffers_of(refs)   # (in C where the node is compiled: see core/nodes.py)
        if bufs is None:
            return None
        outs = backends.current().run(plan, bufs)
    finally:
        buffers_lock.release_read()
    return _own(plan, outs) if plan.copies else outs   # (most plans copy nothing: no call)


def _own(plan, outs: list) -> list:
    if plan.copies:
        for k in plan.copies:  # an input passed through, or a result returned twice
            outs[k] = outs[k].copy()
    return outs


def realize(outputs: Sequence[Tensor]) -> None:
    """Compute every unrealized tensor in outputs in one plan.

    Each output gets a buffer of its own, also an alias (stop_gradient, identity) of a
    realized tensor: sharing a variable's buffer would let an optimizer's in-place update
    change a result that was already read."""
    todo = []
    for o in outputs:
        if o.buf is None and all(o is not t for t in todo):  # not `in`: == is elementwise
            todo.append(o)
    if not todo:
        return
    plan, leaves = plan_for(todo)
    for node, buf in zip(todo, run_plan(plan, leaves)):
        node.buf = buf
        track(node)  # tf.memory() counts it; an open tf.tidy() disposes it


def from_array(array: Any, dtype: str) -> Tensor:
    """A realized leaf holding a backend copy of array (contiguous, of dtype)."""
    buf = backends.current().asarray(array, dtype)
    return leaf(buf, tuple(int(d) for d in buf.shape), dtype)
