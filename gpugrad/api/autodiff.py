"""Reverse mode over the lazy graph, and the public family built on it:
variable_grads, grad, grads, value_and_grad, value_and_grads, custom_grad.

There is no tape: the graph itself records every op. A function's ops are the nodes created
while it ran (ids from its start on); anything older is a constant to it, which gives TF.js's
rule that variables used outside f are not connected. Nothing global changes while f runs, so
an exception in f leaves nothing to clean up, and threads do not interfere: the only state is
per thread (tensor.trace), the nesting depth and the values of the variables this call read.
Those reads are pinned (each variable reads the same value throughout the call, whatever other
threads assign) and are the gradient's targets: a variable is differentiated through the
values f actually read, not through a value looked up before f ran.
"""
from __future__ import annotations

import functools
import operator
import sys
import weakref
from typing import Any, Callable, NamedTuple, Sequence

from gpugrad import backends
from gpugrad.core import dtypes
from gpugrad.runtime import engine
from gpugrad.core import primitives as P
from gpugrad.api import ops as O
from gpugrad.core import tensor as T
from gpugrad.core.caches import Table
from gpugrad.core.nodes import configure_replay
from gpugrad.compile.derivatives import vjp
from gpugrad.compile.schedule import PlanCache, build_plan, structure
from gpugrad.core.tensor import Tensor, buffers_lock, leaf, ids, shape_str, trace, track
from gpugrad.api.variables import Variable, js_key_order, any_trainable_registered, is_registered, registered_count


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
    return trace.depth


def _call(f: Callable, *args) -> tuple[int, Any]:
    """Run f, returning the id where its ops start and its result."""
    start = next(ids)
    trace.depth += 1
    try:
        return start, f(*args)
    finally:
        trace.depth -= 1


def _pinning(api: Callable) -> Callable:
    """Run a gradient API with this thread's variable reads pinned (see tensor.trace); a
    nested call shares the outer call's pins, so the whole computation sees one value of
    each variable."""
    @functools.wraps(api)
    def run(*args, **kwargs):
        if trace.pins is not None:
            return api(*args, **kwargs)
        trace.pins = {}
        try:
            return api(*args, **kwargs)
        finally:
            trace.pins = None
    return run


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
        if n.op == "stop_gradient":
            continue  # what passes only through stop_gradient is not connected
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
            grads[id(s)] = gs if prev is None else _accumulated(prev, gs)
    return grads


def _accumulated(a: Tensor, b: Tensor) -> Tensor:
    """a + b, two gradient contributions of one node. The gradient through a subtraction is a
    negation, and (-x) + b is b - x exactly in IEEE arithmetic: one op fewer (a call fewer on
    numpy), where the negation is a node of this walk's own making."""
    if b.op == "neg" and b.buf is None and b.__class__ is Tensor:
        return O.sub(a, b.src[0])
    if a.op == "neg" and a.buf is None and a.__class__ is Tensor:
        return O.sub(b, a.src[0])
    return O.add(a, b)


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

_fast_plans = PlanCache("gradient plans")
# (y's structural key, the id of the leaf each trainable variable was read through, -1 for
# none) -> (plan, weak references to its input leaves, where each gradient sits).
_hot_plans = Table("gradient plans by key", 4096)


def _is_variable(v) -> bool:
    return v.__class__ is Variable or (isinstance(v, Tensor) and callable(getattr(v, "assign", None)))


def _check_var_list(var_list) -> tuple[list[Variable], int]:
    if not isinstance(var_list, (list, tuple)) or not all(map(_is_variable, var_list)):
        bad = var_list if not isinstance(var_list, (list, tuple)) else next(
            v for v in var_list if not _is_variable(v))
        raise TypeError(
            "The var_list passed in variable_grads(f, var_list) must be an array of variables "
            f"(got {type(bad).__name__}; make them with tf.variable()).")
    return list(var_list), len(var_list)


def _none_trainable(count: int) -> ValueError:
    return ValueError(
        "variable_grads() expects at least one of the input variables to be trainable, but "
        f"none of the {count} variables is trainable.")


def _variables_for(f, var_list, api: str):
    """TF.js's checks before f runs, in its order. Returns the trainable variables
    (deduplicated; None for the default list, which is known only once f has run) and the
    explicitly listed frozen ones."""
    if not callable(f):
        raise TypeError(
            f"The f passed in variable_grads(f) must be a function (got {type(f).__name__}).")
    if var_list is None:
        # Whether any registered variable is trainable is kept up to date by the registry:
        # scanning it here cost O(registered variables) per call.
        if not any_trainable_registered():
            raise _none_trainable(registered_count())
        return None, []
    candidates, count = _check_var_list(var_list)
    trainable = [v for v in candidates if v.trainable]
    frozen = [v for v in candidates if not v.trainable]
    if not trainable:
        raise _none_trainable(count)
    if len(set(map(id, trainable))) != len(trainable):
        trainable = list({id(v): v for v in trainable}.values())  # [a, a] gives one key
    for v in trainable:
        v._node()  # a disposed variable fails here, before f runs, as in TF.js
    return trainable, frozen


def _targets(trainable):
    """After f ran: the trainable variables (for the default list, the registered trainable
    ones f read, in registration order) and, for each, the leaves f read it through (more
    than one only where f assigned it)."""
    pins = trace.pins
    if trainable is None:
        trainable = [v for v, _ in pins.values() if v._trainable and is_registered(v)]
        if len(trainable) > 1:
            trainable.sort(key=_serial)
    return trainable, [tuple(pins[id(v)][1]) if id(v) in pins else () for v in trainable]


_serial = operator.attrgetter("serial")


def variable_grads(f: Callable[[], Tensor], var_list: Sequence[Variable] | None = None) -> VariableGrads:
    """The value of f() and its gradient with respect to each trainable variable, by name.

    As TF.js's tf.variableGrads: var_list defaults to every registered trainable variable; an
    explicitly listed non-trainable variable maps to None; a variable f does not use is absent.
    The value and all gradients are computed by one plan when this returns.
    """
    out = _replay(f, var_list)
    if out is None:   # not the common case: f has not run
        return _variable_grads_general(f, var_list)
    if out.__class__ is VariableGrads:
        return out
    y, start, pins = out   # f ran, but its plan is not cached: trace.pins is still set
    try:
        if y.__class__ is not Tensor:
            y = _as_result(y)
        value, found = _variable_grads_cached(
            y, start, var_list, [tuple(pins[id(v)][1]) for v in var_list])
    finally:
        trace.pins = None
    return _result(value, found, var_list, ())


def _replay_python(f, var_list):
    """The common case of variable_grads, checked cheaply: a top-level call over distinct,
    live, trainable variables (what _variables_for accepts without a message), each pinned
    before f runs, as there. Returns None where it is not that case (f has not run); the
    result where f made its whole graph, assigned no variable and its plan is cached (found
    by (y.key, the leaf each variable was read through), no walk over the graph); otherwise
    (y, start, pins), with trace.pins still set, for variable_grads to finish. _nodes.c's
    replay does the same where the node is compiled."""
    tr = trace
    if not (tr.pins is None and tr.depth == 0 and (var_list.__class__ is list or var_list.__class__ is tuple)
            and var_list and callable(f)):
        return None
    pins = {}
    read = []   # the id of the leaf each variable holds: with y's key, the plan's key
    for v in var_list:
        if v.__class__ is not Variable or not v._trainable or v.disposed or id(v) in pins:
            return None
        node = v.value_node
        pins[id(v)] = (v, [node])
        read.append(node.id)
    tr.pins = pins
    try:
        start = next(ids)
        tr.depth = 1
        try:
            y = f()
        finally:
            tr.depth = 0
        if y.__class__ is Tensor and y.lo >= start:
            for entry in pins.values():
                if len(entry[1]) != 1:   # f assigned a variable: the general path
                    break
            else:
                entry = _hot_plans.get((y.key, *read))
                if entry is not None:
                    result = _replayed(entry, y, var_list)
                    if result is not None:
                        tr.pins = None
                        return result
    except BaseException:
        tr.pins = None
        raise
    return y, start, pins


def _refcount_of_a_local() -> int:
    probe = leaf(None, (), dtypes.float32, tracked=False)
    return sys.getrefcount(probe)


# What sys.getrefcount reports for an object one local variable holds; measured rather than
# assumed, as interpreters differ (3.14 borrows references; a count too low only means a y
# held elsewhere stays lazy, and is computed again if read).
_ALONE = _refcount_of_a_local() if hasattr(sys, "getrefcount") else None


def _replayed(entry, y, var_list) -> VariableGrads | None:
    """A cached plan run over the leaves it was cached with, its outputs wrapped as the
    result; None where one of those leaves is gone (the caller then takes the general path)."""
    plan, refs, _, specs = entry
    outs = engine.run_plan_weak(plan, refs)
    if outs is None:
        return None
    # y itself is realized too (never over a realized y, see _wrap_results) where something
    # besides this call and its caller holds it: f kept it, or a tensor built on it, so a later
    # read costs nothing. Otherwise it goes on return, and tracking it would be wasted.
    if y.buf is None and (_ALONE is None or sys.getrefcount(y) > _ALONE + 1):
        y.buf = outs[0]
        track(y)
    value = leaf(outs[0], y.shape, y.dtype)
    grads = {}
    for i, k, shape, dtype in specs:
        grads[var_list[i].name] = leaf(outs[k], shape, dtype)
    order = _ordered(tuple(grads))
    if order is not None:
        grads = {name: grads[name] for name in order}
    return _new_tuple(VariableGrads, (value, grads))


@_pinning
def _variable_grads_general(f, var_list):
    trainable, frozen = _variables_for(f, var_list, "variable_grads")
    start, y = _call(f)
    y = _as_result(y)   # f may return a variable itself: reading it pins it too
    trainable, targets = _targets(trainable)
    if _nesting() == 0:
        value, found = _variable_grads_cached(y, start, trainable, targets)
    else:  # inside another differentiation: keep the graph so it can differentiate this
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
    return _result(value, found, trainable, frozen)


def _result(value, found, trainable, frozen) -> VariableGrads:
    grads = {v.name: found[id(v)] for v in trainable if id(v) in found}
    for v in frozen:
        grads.setdefault(v.name, None)
    order = _ordered(tuple(grads))
    if order is not None:
        grads = {name: grads[name] for name in order}
    return _new_tuple(VariableGrads, (value, grads))


_new_tuple = tuple.__new__   # VariableGrads(value, grads) without its Python-level __new__


@functools.lru_cache(maxsize=1024)
def _ordered(names: tuple) -> list | None:
    """JS object key order of the names; None where that is the order given."""
    order = js_key_order(list(names))
    return None if order == list(names) else order


def _check_connected_scalar(y, trainable, depends, targets):
    if id(y) not in depends:
        names = ", ".join(repr(v.name) for v in trainable)
        raise ValueError(f"{_NO_CONNECTION} " + (f"(variables: {names})" if names else
                                                 "(f read no trainable variable)"))
    if y.ndim != 0:
        raise ValueError(
            f"The f passed in variable_grads(f) must return a scalar, but it returned a rank-{y.ndim} "
            f"tensor (shape {list(y.shape)}); reduce it, e.g. with tf.sum or tf.mean.")


def _gradient_graph(y, start, trainable, targets):
    """Walk back from y: the value and gradient tensors (lazy), and where each gradient sits
    among the outputs [value, gradients...] (None for a variable f does not reach)."""
    order, depends, is_target = _reach(y, [t for ts in targets for t in ts], start)
    _check_connected_scalar(y, trainable, depends, targets)
    dy = T.const(1, (), dtypes.grad_dtype(y.dtype))
    back = _backprop(y, dy, order, depends, is_target)
    # The value must be a tensor of its own, even when f returns a variable.
    value = y if y.op != "buffer" else T.elementwise("copy", (y,), y.dtype)
    found, present, outputs = {}, [], [value]
    own = _own_tensors(outputs)
    for v, ts in zip(trainable, targets):
        parts = [back[id(t)] for t in ts if id(t) in back]
        g = parts[0] if parts else None
        for part in parts[1:]:  # read before and after f assigned it: both count
            g = O.add(g, part)
        present.append(len(outputs) if g is not None else None)
        if g is not None:
            g = own(g)
            found[id(v)] = g
            outputs.append(g)
    return value, found, outputs, tuple(present)


def _own_tensors(outputs: list) -> Callable[[Tensor], Tensor]:
    """A function that makes each result a tensor of its own. A gradient can be a tensor
    that already exists (dy * q with dy = 1 is q, a variable's leaf; the two gradients of
    a + b are one tensor dy): returned as it is, it would share memory with a variable, an
    input or another result. Such a one is wrapped in an identity node, which the plan
    computes into a new buffer (plan.copies)."""
    taken = {id(o) for o in outputs}

    def own(t: Tensor) -> Tensor:
        if t.buf is not None or id(t) in taken:
            t = Tensor(P.IDENTITY, (t,), None, t.shape, t.dtype)
        taken.add(id(t))
        return t
    return own


def _variable_grads_traced(y, start, trainable, targets, leaves=None):
    """Compute the value and every gradient in one plan. With the forward leaves given,
    also returns that plan with its inputs' positions among those leaves, for the cache."""
    value, found, outputs, present = _gradient_graph(y, start, trainable, targets)
    if leaves is None:
        engine.realize(outputs)
        return value, found, None
    _, out_leaves, nodes = structure(outputs)
    position = {id(n): i for i, n in enumerate(leaves)}
    picks = [position.get(id(n)) for n in out_leaves]
    plan = build_plan(outputs, nodes)
    for node, buf in zip(outputs, engine.run_plan(plan, out_leaves)):
        node.buf = buf
        track(node)
    return value, found, ((plan, picks, present) if None not in picks else None)


@_pinning
def plan_variable_grads(f, var_list=None):
    """The plan variable_grads(f, var_list) runs, and names for its buffers (for explain)."""
    trainable, _ = _variables_for(f, var_list, "explain")
    start, y = _call(f)
    y = _as_result(y)
    trainable, targets = _targets(trainable)
    value, found, outputs, _ = _gradient_graph(y, start, trainable, targets)
    _, leaves, nodes = structure(outputs)
    plan = build_plan(outputs, nodes)
    names = {}
    for i, input_leaf in enumerate(leaves):
        for v, ts in zip(trainable, targets):
            if any(input_leaf is t for t in ts):
                names[i] = f"variable {v.name!r}"
    names[plan.outputs[0][0]] = "value"
    for v in trainable:
        if id(v) in found:
            at = next(k for k, o in enumerate(outputs) if o is found[id(v)])  # == is elementwise
            names[plan.outputs[at][0]] = f"grad {v.name!r}"
    return plan, names


def _variable_grads_cached(y, start, trainable, targets):
    """The common case, a repeated call. First by y's structural key, built as f created
    its nodes (tensor.py): the key names the very leaves the graph reads, so a hit knows the
    plan and its inputs without any walk over the graph. Only for a graph whose every op f
    created (y.lo >= start) and whose variables f read once each."""
    if y.lo >= start:
        tkey = []
        for ts in targets:
            if len(ts) != 1:
                if ts:
                    break
                tkey.append(-1)
            else:
                tkey.append(ts[0].id)
        else:
            hot_key = (y.key, *tkey)
            entry = _hot_plans.get(hot_key)
            if entry is not None:
                outs = engine.run_plan_weak(entry[0], entry[1])
                if outs is not None:
                    return _wrap_results(y, trainable, entry[2], outs)
            value, found, hot = _variable_grads_walked(y, start, trainable, targets)
            if hot is not None:
                _hot_plans.put(hot_key, hot)
            return value, found
    return _variable_grads_walked(y, start, trainable, targets)[:2]


def _wrap_results(y, trainable, present, bufs):
    if y.buf is None:  # (never over a realized y: f may have returned a variable's leaf)
        y.buf = bufs[0]
        track(y)
    value = leaf(bufs[0], y.shape, y.dtype)
    found = {}
    for v, k in zip(trainable, present):
        if k is not None:
            found[id(v)] = leaf(bufs[k], v.shape, dtypes.grad_dtype(v.dtype))
    return value, found


def _variable_grads_walked(y, start, trainable, targets):
    """The cached path by a walk over the graph: find the plan by the forward graph's
    structure and skip the backward walk. Also returns what the key-only path caches (the
    plan and its input leaves, weakly) where that path may replay it, else None."""
    key, leaves, nodes = structure([y], keep_aliases=True)
    if key is None or any(len(ts) > 1 for ts in targets):
        # custom gradients close over arbitrary tensors: never replay them; nor the rare f
        # that assigns a variable it read
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
        return value, found, None
    for n in leaves:
        if n.op != "buffer":
            # Realized intermediates (f printed one, say) hide the graph behind them.
            value, found, _ = _variable_grads_traced(y, start, trainable, targets)
            return value, found, None
    position = {n: i for i, n in enumerate(leaves)}
    # Nodes made before f started are constants to it: which ones are is part of the key.
    full_key = (key, tuple([position.get(ts[0], -1) if ts else -1 for ts in targets]),
                tuple([n.id >= start for n in nodes if n.op != "buffer"]))
    entry = _fast_plans.get(full_key)
    if entry is None:
        value, found, entry = _variable_grads_traced(y, start, trainable, targets, leaves)
        if entry is not None:
            _fast_plans.put(full_key, entry)
    else:
        plan, picks, present = entry
        value, found = _wrap_results(y, trainable, present,
                                     engine.run_plan(plan, [leaves[i] for i in picks]))
    if entry is None:
        return value, found, None
    plan, picks, present = entry
    # (position among the trainable variables, output, shape, dtype) of each gradient: by
    # position, as the entry must not hold variables (nor, but weakly, leaves) alive
    specs = tuple([(i, k, v.shape, dtypes.grad_dtype(v.dtype))
                   for i, (v, k) in enumerate(zip(trainable, present)) if k is not None])
    return value, found, (plan, tuple([weakref.ref(leaves[i]) for i in picks]), present, specs)


# --- grad, grads, value_and_grad, value_and_grads --------------------------------------------

_NOT_CONNECTED_ONE = (
    "Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed "
    "encloses all operations that lead from x to y.")
_NOT_CONNECTED_SOME = (
    "Cannot compute gradient of y=f(x) with respect to x. Make sure that\n"
    "    the f you passed encloses all operations that lead from x to y.")


def _check_f(f, api: str) -> None:
    if not callable(f):
        raise TypeError(f"The f passed in {api}(f) must be a function (got {type(f).__name__}).")


def _dy_for(y: Tensor, dy: Any, api: str, call: str, check_shape: bool) -> Tensor:
    if dy is None:
        return T.const(1, y.shape, dtypes.grad_dtype(y.dtype))
    dy = O.convert(dy)
    if not dtypes.is_float(dy.dtype):
        raise TypeError(f"dy must have 'float32' dtype, but has '{dy.dtype}'")
    if dy.shape != y.shape:
        O.broadcast_shapes(api, dy.shape, y.shape)  # not broadcastable: fails as TF.js's backprop does
        if check_shape:
            raise ValueError(
                f"The shape of dy passed in {call} must match the shape returned by "
                f"{'f([x1,...])' if api != 'grad' else 'f(x)'} Shapes {shape_str(y.shape)} and "
                f"{shape_str(dy.shape)} must match")
        dy = O.broadcast_to(dy, O.broadcast_shapes(api, dy.shape, y.shape))
        if dy.shape != y.shape:
            raise ValueError(
                f"Operands could not be broadcast together with shapes {shape_str(y.shape)} and "
                f"{shape_str(dy.shape)}.")
    return T.cast(dy, dtypes.grad_dtype(y.dtype))


def _gradients(f: Callable, xs: list[Tensor], dy: Any, api: str, call: str, check_shape: bool = True):
    if not xs:
        raise ValueError("gradients() received an empty list of xs.")
    # A tensor passed in is an input, whatever made it: a lazy constant (ones, zeros, fill)
    # would be folded into new constants by f's ops and lose its connection to y, so f gets
    # an identity node over it (read as the constant by the scheduler).
    xs = [Tensor(P.IDENTITY, (x,), None, x.shape, x.dtype) if T.is_const(x) else x for x in xs]
    start, y = _call(f, *xs)
    y = _as_result(y)
    if any(y is x for x in xs):
        raise ValueError(_NOT_CONNECTED_ONE)
    order, depends, is_target = _reach(y, xs, start)
    connected = [id(x) in depends and any(id(x) in map(id, n.src) for n in order if n.id >= start) for x in xs]
    if not any(connected):
        raise ValueError(_NOT_CONNECTED_ONE)
    if not all(connected):
        missing = [i for i, c in enumerate(connected) if not c]
        raise ValueError(f"{_NOT_CONNECTED_SOME} (not connected: argument {', '.join(map(str, missing))})")
    back = _backprop(y, _dy_for(y, dy, api, call, check_shape), order, depends, is_target)
    out = []
    own = _own_tensors([y, *xs])   # nor an input, nor the value, nor another gradient
    for x in xs:
        g = back.get(id(x))
        out.append(own(g) if g is not None else T.const(0, x.shape, dtypes.grad_dtype(x.dtype)))
    return y, out


def _tensor_args(args, api: str, message: str) -> list[Tensor]:
    if not isinstance(args, (list, tuple)):
        raise TypeError(message)
    try:
        return [O.convert(a) for a in args]
    except (TypeError, ValueError):
        raise TypeError(message) from None


def grad(f: Callable[[Tensor], Tensor]) -> Callable[..., Tensor]:
    """tf.grad: g(x, dy=None) -> the gradient of sum(f(x) * dy) with respect to x."""
    _check_f(f, "grad")

    @_pinning
    def g(x: Any, dy: Any = None) -> Tensor:
        return _gradients(f, [O.convert(x)], dy, "grad", "grad(f)(x, dy)")[1][0]
    return g


def grads(f: Callable[..., Tensor]) -> Callable[..., list]:
    """tf.grads: g([x1, x2, ...], dy=None) -> [dx1, dx2, ...]."""
    _check_f(f, "grads")

    @_pinning
    def g(args: Sequence[Any], dy: Any = None) -> list:
        xs = _tensor_args(args, "grads", "The args passed in grads(f)(args) must be an array of `Tensor`s or `TensorLike`s")
        return _gradients(f, xs, dy, "grads", "grads(f)([x1,...], dy)")[1]
    return g


def value_and_grad(f: Callable[[Tensor], Tensor]) -> Callable[..., ValueAndGrad]:
    """tf.valueAndGrad: g(x, dy=None) -> (value, grad)."""
    _check_f(f, "value_and_grad")

    @_pinning
    def g(x: Tensor, dy: Tensor | None = None) -> ValueAndGrad:
        if not isinstance(x, Tensor):
            raise TypeError("The x passed in value_and_grad(f)(x) must be a tensor")
        if dy is not None and not isinstance(dy, Tensor):
            raise TypeError("The dy passed in value_and_grad(f)(x, dy) must be a tensor")
        y, (dx,) = _gradients(f, [x._node()], dy, "value_and_grad", "value_and_grad(f)(x, dy)", False)
        _realize_unless_nested([y, dx])
        return ValueAndGrad(y, dx)
    return g


def value_and_grads(f: Callable[..., Tensor]) -> Callable[..., ValueAndGrads]:
    """tf.valueAndGrads: g([x1, ...], dy=None) -> (value, [dx1, ...])."""
    _check_f(f, "value_and_grads")

    @_pinning
    def g(args: Sequence[Tensor], dy: Tensor | None = None) -> ValueAndGrads:
        if not isinstance(args, (list, tuple)) or not all(isinstance(a, Tensor) for a in args):
            raise TypeError("The args passed in value_and_grads(f)(args) must be array of tensors")
        if dy is not None and not isinstance(dy, Tensor):
            raise TypeError("The dy passed in value_and_grads(f)(args, dy) must be a tensor")
        y, dxs = _gradients(f, [a._node() for a in args], dy, "value_and_grads",
                            "value_and_grads(f)([x1,...], dy)")
        _realize_unless_nested([y, *dxs])
        return ValueAndGrads(y, dxs)
    return g


def _realize_unless_nested(tensors: list) -> None:
    if _nesting() == 0:
        engine.realize(tensors)


# --- custom_grad -----------------------------------------------------------------------------


def custom_grad(f: Callable) -> Callable[..., Tensor]:
    """tf.customGrad: f(*inputs, save) returns {'value': y, 'grad_func': fn(dy, saved)}; the
    gradient of the result with respect to each input is what grad_func returns."""
    if not callable(f):
        raise TypeError("The f passed in custom_grad(f) must be a function.")

    def call(*inputs) -> Tensor:
        if not all(isinstance(x, Tensor) for x in inputs):
            raise TypeError("The args passed in custom_grad(f)(x1, x2,...) must all be tensors")
        xs = [x._node() for x in inputs]
        saved: list = []

        def save(tensors):
            saved[:] = list(tensors)

        out = f(*xs, save)
        value = out.get("value") if isinstance(out, dict) else getattr(out, "value", None)
        grad_func = None
        if isinstance(out, dict):
            grad_func = out.get("grad_func", out.get("gradFunc"))
        if not isinstance(value, Tensor):
            raise TypeError("The function f passed in custom_grad(f) must return an object where `obj.value` is a tensor")
        if not callable(grad_func):
            raise TypeError("The function f passed in custom_grad(f) must return an object where `obj.grad_func` is a function.")
        value = value._node()
        node = Tensor("custom_grad", (value, *xs), (grad_func, tuple(saved)), value.shape, value.dtype)
        return node
    return call




# The cached path in C where the node is compiled (nodes.configure_replay); else in Python.
_replay = configure_replay(_hot_plans, engine.run_plan_weak, _ordered, _new_tuple, VariableGrads,
                           Tensor, buffers_lock, vars(backends)) or _replay_python
