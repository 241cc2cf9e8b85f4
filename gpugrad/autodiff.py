"""Reverse mode over the lazy graph, and the public family built on it:
variable_grads, grad, grads, value_and_grad, value_and_grads, custom_grad.

There is no tape: the graph itself records every op. A function's ops are the nodes created
while it ran (ids from its start on); anything older is a constant to it, which gives TF.js's
rule that variables used outside f are not connected. Nothing global changes while f runs, so
an exception in f leaves nothing to clean up, and threads do not interfere.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, NamedTuple, Sequence

from . import dtypes
from . import engine
from . import ops as O
from . import tensor as T
from .derivatives import vjp
from .schedule import PlanCache, build_plan, resolve, structure
from .tensor import Tensor, _ids, shape_str
from .variables import Variable, _js_key_order, registered_variables

_local = threading.local()


class VariableGrads(NamedTuple):
    value: Tensor
    grads: dict


class ValueAndGrad(NamedTuple):
    value: Tensor
    grad: Tensor


class ValueAndGrads(NamedTuple):
    value: Tensor
    grads: list


def _nesting() -> int:
    return getattr(_local, "depth", 0)


def _call(f: Callable, *args) -> tuple[int, Any]:
    """Run f, returning the id where its ops start and its result."""
    start = next(_ids)
    _local.depth = _nesting() + 1
    try:
        return start, f(*args)
    finally:
        _local.depth -= 1


# --- the reverse walk ------------------------------------------------------------------------


def _reach(y: Tensor, targets: Sequence[Tensor], start: int):
    """Nodes f created between the targets and y, in topological order, and which of them
    depend on a target."""
    is_target = {id(t) for t in targets}
    seen: dict[int, Tensor] = {}
    stack = [y]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        if id(n) in is_target or n.id < start or n.op in ("buffer", "const", "variable"):
            continue
        stack.extend(n.src)
    order = sorted(seen.values(), key=lambda n: n.id)
    depends = set(is_target)
    for n in order:
        if id(n) not in depends and n.id >= start and any(id(s) in depends for s in n.src):
            depends.add(id(n))
    return order, depends, is_target


def _backprop(y: Tensor, dy: Tensor, order, depends, is_target) -> dict[int, Tensor]:
    grads = {id(y): dy}
    for n in reversed(order):
        g = grads.get(id(n))
        if g is None or id(n) in is_target or id(n) not in depends or not n.src:
            continue
        for s, gs in zip(n.src, vjp(n, g)):
            if gs is None or id(s) not in depends:
                continue
            if gs.shape != s.shape:
                raise ValueError(
                    f"Error in gradient for op {n.op}. The gradient of input has shape "
                    f"'{shape_str(gs.shape)}', which does not match the shape of the input "
                    f"'{shape_str(s.shape)}'")
            prev = grads.get(id(s))
            grads[id(s)] = gs if prev is None else O.add(prev, gs)
    return grads


def _as_result(y: Any) -> Tensor:
    if not isinstance(y, Tensor):
        raise TypeError(
            f"The result y returned by f() must be a tensor. (f returned {type(y).__name__}; "
            "return a gpugrad tensor, e.g. tf.scalar(value) or an op's result.)")
    return y._node()


# --- variable_grads --------------------------------------------------------------------------

_NO_CONNECTION = (
    "Cannot find a connection between any variable and the result of the loss function y=f(x). "
    "Please make sure the operations that use variables are inside the function f passed to "
    "minimize().")

_fast_plans = PlanCache()


def _check_var_list(var_list) -> tuple[list[Variable], int]:
    if var_list is None:
        every = registered_variables()
        return [v for v in every], len(every)
    if not isinstance(var_list, (list, tuple)) or not all(
            isinstance(v, Tensor) and callable(getattr(v, "assign", None)) for v in var_list):
        bad = var_list if not isinstance(var_list, (list, tuple)) else next(
            v for v in var_list if not (isinstance(v, Tensor) and callable(getattr(v, "assign", None))))
        raise TypeError(
            "The var_list passed in variable_grads(f, var_list) must be a list of variables "
            f"(got {type(bad).__name__}; make them with tf.variable()).")
    return list(var_list), len(var_list)


def variable_grads(f: Callable[[], Tensor], var_list: Sequence[Variable] | None = None) -> VariableGrads:
    """The value of f() and its gradient with respect to each trainable variable, by name.

    As TF.js's tf.variableGrads: var_list defaults to every registered trainable variable; an
    explicitly listed non-trainable variable maps to None; a variable f does not use is absent.
    The value and all gradients are computed by one plan when this returns.
    """
    if not callable(f):
        raise TypeError(
            f"The f passed in variable_grads(f) must be a function (got {type(f).__name__}).")
    candidates, count = _check_var_list(var_list)
    trainable, frozen = [], []
    for v in candidates:
        (trainable if v.trainable else frozen).append(v)
    if var_list is None:
        frozen = []
    if not trainable:
        raise ValueError(
            "variable_grads() expects at least one of the input variables to be trainable, but "
            f"none of the {count} variables is trainable.")
    unique: dict[int, Variable] = {}
    for v in trainable:
        unique.setdefault(id(v), v)
    trainable = list(unique.values())
    targets = [v._node() for v in trainable]

    start, y = _call(f)
    y = _as_result(y)
    if _nesting() == 0:
        value, found = _variable_grads_cached(y, start, trainable, targets)
    else:  # inside another differentiation: keep the graph so it can differentiate this
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
    grads = {}
    for v in trainable:
        if id(v) in found:
            grads[v.name] = found[id(v)]
    for v in frozen:
        grads.setdefault(v.name, None)
    ordered = {name: grads[name] for name in _js_key_order(list(grads))}
    return VariableGrads(value, ordered)


def _check_connected_scalar(y, trainable, depends, targets):
    if not any(id(t) in depends and t is not y for t in targets) and not any(t is y for t in targets):
        names = ", ".join(repr(v.name) for v in trainable)
        raise ValueError(f"{_NO_CONNECTION} (variables: {names})")
    if y.ndim != 0:
        raise ValueError(
            f"The f passed in variable_grads(f) must return a scalar, but it returned a rank-{y.ndim} "
            f"tensor (shape {list(y.shape)}); reduce it, e.g. with tf.sum or tf.mean.")


def _variable_grads_traced(y, start, trainable, targets, leaves=None):
    """Walk back from y, then compute the value and every gradient in one plan. With the
    forward leaves given, returns that plan too, with its inputs' positions among them."""
    order, depends, is_target = _reach(y, targets, start)
    _check_connected_scalar(y, trainable, depends, targets)
    dy = T.const(1, (), dtypes.grad_dtype(y.dtype))
    back = _backprop(y, dy, order, depends, is_target)
    # The value must be a tensor of its own, even when f returns a variable.
    value = y if y.op != "buffer" else T.elementwise("copy", (y,), y.dtype)
    found, present, outputs = {}, [], [value]
    for v, t in zip(trainable, targets):
        g = back.get(id(t))
        present.append(len(outputs) if g is not None else None)
        if g is not None:
            found[id(v)] = g
            outputs.append(g)
    if leaves is None:
        engine.realize(outputs)
        return value, found, None
    _, out_leaves, nodes = structure(outputs)
    position = {id(n): i for i, n in enumerate(leaves)}
    picks = [position.get(id(n)) for n in out_leaves]
    plan = build_plan(outputs, nodes)
    for node, buf in zip(outputs, engine.run_plan(plan, out_leaves)):
        node.buf = buf
    cacheable = None not in picks
    return value, found, ((plan, picks, tuple(present)) if cacheable else None)


def _variable_grads_cached(y, start, trainable, targets):
    """The common case, a repeated call: find the plan by the forward graph's structure and
    skip the backward walk."""
    key, leaves, nodes = structure([y])
    if any(n.op != "buffer" for n in leaves):
        # Realized intermediates (f printed one, say) hide the graph behind them.
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
        return value, found
    position = {id(n): i for i, n in enumerate(leaves)}
    full_key = (key, tuple(position.get(id(t), -1) for t in targets),
                tuple(n.id >= start for n in nodes))
    entry = _fast_plans.get(full_key)
    if entry is None:
        value, found, entry = _variable_grads_traced(y, start, trainable, targets, leaves)
        if entry is not None:
            _fast_plans.put(full_key, entry)
        return value, found
    plan, picks, present = entry
    bufs = engine.run_plan(plan, [leaves[i] for i in picks])
    y.buf = bufs[0]
    value = T.Tensor("buffer", (), None, y.shape, y.dtype, bufs[0])
    found = {}
    for v, k in zip(trainable, present):
        if k is not None:
            found[id(v)] = T.Tensor("buffer", (), None, v.shape, dtypes.grad_dtype(v.dtype), bufs[k])
    return value, found
