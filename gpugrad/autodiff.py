"""Reverse mode over the lazy graph, and the public family built on it:
variable_grads, grad, grads, value_and_grad, value_and_grads, custom_grad.

There is no tape: the graph itself records every op. A function's ops are the nodes created
while it ran (ids from its start on); anything older is a constant to it, which gives TF.js's
rule that variables used outside f are not connected. Nothing global changes while f runs, so
an exception in f leaves nothing to clean up, and threads do not interfere.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, NamedTuple, Sequence

from . import dtypes
from . import engine
from . import ops as O
from . import tensor as T
from .derivatives import vjp
from .schedule import PlanCache, build_plan, structure
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


def _is_variable(v) -> bool:
    return v.__class__ is Variable or (isinstance(v, Tensor) and callable(getattr(v, "assign", None)))


def _check_var_list(var_list) -> tuple[list[Variable], int]:
    if var_list is None:
        every = registered_variables()
        return every, len(every)
    if not isinstance(var_list, (list, tuple)) or not all(map(_is_variable, var_list)):
        bad = var_list if not isinstance(var_list, (list, tuple)) else next(
            v for v in var_list if not _is_variable(v))
        raise TypeError(
            "The var_list passed in variable_grads(f, var_list) must be an array of variables "
            f"(got {type(bad).__name__}; make them with tf.variable()).")
    return list(var_list), len(var_list)


def _variables_for(f, var_list, api: str):
    """TF.js's checks, in its order: the trainable variables (deduplicated), the explicitly
    listed frozen ones, and the leaves that hold the trainable ones' values."""
    if not callable(f):
        raise TypeError(
            f"The f passed in variable_grads(f) must be a function (got {type(f).__name__}).")
    candidates, count = _check_var_list(var_list)
    trainable = [v for v in candidates if v.trainable]
    frozen = [v for v in candidates if not v.trainable] if var_list is not None else []
    if not trainable:
        raise ValueError(
            "variable_grads() expects at least one of the input variables to be trainable, but "
            f"none of the {count} variables is trainable.")
    if len(set(map(id, trainable))) != len(trainable):
        trainable = list({id(v): v for v in trainable}.values())  # [a, a] gives one key
    # The default list reads each value directly: a variable disposed by another thread
    # meanwhile is simply one that f does not use.
    return trainable, frozen, [v.value_node if var_list is None else v._node() for v in trainable]


def variable_grads(f: Callable[[], Tensor], var_list: Sequence[Variable] | None = None) -> VariableGrads:
    """The value of f() and its gradient with respect to each trainable variable, by name.

    As TF.js's tf.variableGrads: var_list defaults to every registered trainable variable; an
    explicitly listed non-trainable variable maps to None; a variable f does not use is absent.
    The value and all gradients are computed by one plan when this returns.
    """
    trainable, frozen, targets = _variables_for(f, var_list, "variable_grads")
    start, y = _call(f)
    y = _as_result(y)
    if _nesting() == 0:
        value, found = _variable_grads_cached(y, start, trainable, targets)
    else:  # inside another differentiation: keep the graph so it can differentiate this
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
    grads = {v.name: found[id(v)] for v in trainable if id(v) in found}
    for v in frozen:
        grads.setdefault(v.name, None)
    return VariableGrads(value, {name: grads[name] for name in _ordered(tuple(grads))})


@functools.lru_cache(maxsize=1024)
def _ordered(names: tuple) -> list:
    return _js_key_order(list(names))


def _check_connected_scalar(y, trainable, depends, targets):
    if id(y) not in depends:
        names = ", ".join(repr(v.name) for v in trainable)
        raise ValueError(f"{_NO_CONNECTION} (variables: {names})")
    if y.ndim != 0:
        raise ValueError(
            f"The f passed in variable_grads(f) must return a scalar, but it returned a rank-{y.ndim} "
            f"tensor (shape {list(y.shape)}); reduce it, e.g. with tf.sum or tf.mean.")


def _gradient_graph(y, start, trainable, targets):
    """Walk back from y: the value and gradient tensors (lazy), and where each gradient sits
    among the outputs [value, gradients...] (None for a variable f does not reach)."""
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
    return value, found, outputs, tuple(present)


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
    return value, found, ((plan, picks, present) if None not in picks else None)


def plan_variable_grads(f, var_list=None):
    """The plan variable_grads(f, var_list) runs, and names for its buffers (for explain)."""
    trainable, _, targets = _variables_for(f, var_list, "explain")
    start, y = _call(f)
    y = _as_result(y)
    value, found, outputs, _ = _gradient_graph(y, start, trainable, targets)
    _, leaves, nodes = structure(outputs)
    plan = build_plan(outputs, nodes)
    names = {}
    for i, leaf in enumerate(leaves):
        for v, t in zip(trainable, targets):
            if leaf is t:
                names[i] = f"variable {v.name!r}"
    names[plan.outputs[0][0]] = "value"
    for v in trainable:
        if id(v) in found:
            at = next(k for k, o in enumerate(outputs) if o is found[id(v)])  # == is elementwise
            names[plan.outputs[at][0]] = f"grad {v.name!r}"
    return plan, names


def _variable_grads_cached(y, start, trainable, targets):
    """The common case, a repeated call: find the plan by the forward graph's structure and
    skip the backward walk."""
    key, leaves, nodes = structure([y], keep_aliases=True)
    if key is None:  # custom gradients close over arbitrary tensors: never replay them
        value, found, _ = _variable_grads_traced(y, start, trainable, targets)
        return value, found
    for n in leaves:
        if n.op != "buffer":
            # Realized intermediates (f printed one, say) hide the graph behind them.
            value, found, _ = _variable_grads_traced(y, start, trainable, targets)
            return value, found
    position = {n: i for i, n in enumerate(leaves)}
    # Nodes made before f started are constants to it: which ones are is part of the key.
    full_key = (key, tuple([position.get(t, -1) for t in targets]),
                tuple([n.id >= start for n in nodes if n.op != "buffer"]))
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
    for x in xs:
        g = back.get(id(x))
        out.append(g if g is not None else T.const(0, x.shape, dtypes.grad_dtype(x.dtype)))
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

    def g(x: Any, dy: Any = None) -> Tensor:
        return _gradients(f, [O.convert(x)], dy, "grad", "grad(f)(x, dy)")[1][0]
    return g


def grads(f: Callable[..., Tensor]) -> Callable[..., list]:
    """tf.grads: g([x1, x2, ...], dy=None) -> [dx1, dx2, ...]."""
    _check_f(f, "grads")

    def g(args: Sequence[Any], dy: Any = None) -> list:
        xs = _tensor_args(args, "grads", "The args passed in grads(f)(args) must be an array of `Tensor`s or `TensorLike`s")
        return _gradients(f, xs, dy, "grads", "grads(f)([x1,...], dy)")[1]
    return g


def value_and_grad(f: Callable[[Tensor], Tensor]) -> Callable[..., ValueAndGrad]:
    """tf.valueAndGrad: g(x, dy=None) -> (value, grad)."""
    _check_f(f, "value_and_grad")

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


def _custom_rule(n: Tensor, dy: Tensor) -> tuple:
    grad_func, saved = n.arg
    out = grad_func(dy, list(saved))
    xs = n.src[1:]
    if isinstance(out, Tensor):
        out = [out]
    if not isinstance(out, (list, tuple)) or len(out) != len(xs):
        raise ValueError(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is "
            "a function that returns the same number of tensors as inputs passed to f(...).")
    if not all(isinstance(g, Tensor) for g in out):
        raise TypeError(
            "The function f passed in custom_grad(f) must return an object where `obj.grad_func` is "
            "a function that returns a list of only tensors.")
    result = []
    for i, (g, x) in enumerate(zip(out, xs)):
        g = g._node()
        if g.shape != x.shape:
            raise ValueError(
                f"Error in gradient for op forward. The gradient of input '{i}' has shape "
                f"'{shape_str(g.shape)}', which does not match the shape of the input '{shape_str(x.shape)}'")
        result.append(T.cast(g, dtypes.grad_dtype(x.dtype)))
    return (None, *result)


def _install_custom_rule() -> None:
    from .derivatives import RULES
    RULES["custom_grad"] = _custom_rule


_install_custom_rule()
