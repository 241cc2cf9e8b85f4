"""Realization: trace the pending graph, find or build its plan, run it on the backend."""
from __future__ import annotations

from typing import Sequence

from . import backends
from .schedule import PlanCache, build_plan, resolve, structure
from .tensor import Tensor

plans = PlanCache()


def plan_for(outputs: Sequence[Tensor]):
    """(plan, leaves) for computing outputs: the plan from the cache where the structure is known."""
    key, leaves, nodes = structure(outputs)
    plan = plans.get(key)
    if plan is None:
        plan = build_plan(outputs, nodes)
        plans.put(key, plan)
    return plan, leaves


def run_plan(plan, leaves: Sequence[Tensor]) -> list:
    return backends.current().run(plan, [leaf.buf for leaf in leaves])


def realize(outputs: Sequence[Tensor]) -> None:
    """Compute every unrealized tensor in outputs in one plan."""
    todo = []
    for o in outputs:
        node = resolve(o)
        if node.buf is None and all(node is not t for t in todo):  # not `in`: == is elementwise
            todo.append(node)
    if not todo:
        for o in outputs:
            if o.buf is None:
                o.buf = resolve(o).buf
        return
    plan, leaves = plan_for(todo)
    for node, buf in zip(todo, run_plan(plan, leaves)):
        node.buf = buf
    for o in outputs:
        if o.buf is None:
            o.buf = resolve(o).buf
