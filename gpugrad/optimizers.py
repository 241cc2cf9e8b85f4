"""Optimizers on top of variable_grads, with TF.js's names and defaults (``tf.train.*``).

Each optimizer's math is its update rule, kernels/optim/<rule>.cu (see optim_codegen.py): the
numpy backend runs the rule's statements with numpy, and a GPU backend runs ONE generated
kernel per dtype for all variables of a step (multi-tensor apply). Updates are in place.

Better than TF.js, on purpose:
* State (slots) is keyed by the Variable object, never by the variable's position in the
  applied list (TF.js gives p2 p1's momentum when the list changes). It lives on the optimizer
  in a weak dict keyed by identity, not in the variable registry: TF.js registers slots as variables
  (using up auto names and showing up in the default var_list); gpugrad does not.
* Each variable counts its own steps t, as PyTorch does, so a variable that joins training
  late gets its own bias correction (TF.js uses the optimizer's global count).
* Adadelta and centered RMSProp follow their papers (see their rule files).
* A missing or non-positive learning rate is an error, not NaN.
* Every check runs before any variable is touched: a bad gradient leaves all variables and all
  state as they were.

State as weights (get_weights / set_weights, and gpugrad.save / gpugrad.load): TF.js lists
``iter`` then its slot variables by position; gpugrad names everything by variable name, so a
list of weights means the same thing whatever order variables were applied in:

* ``iter``: optimizer.iterations (successful applies), an int32 scalar; first, as in TF.js.
* then per variable that has state, in sorted name order: ``<name>/step``, the variable's own
  update count (int32 scalar; Adam's bias correction reads it), then one entry per slot under
  TF.js's slot names: ``<name>/momentum`` (momentum), ``<name>/accumulator`` (adagrad),
  ``<name>/accum_grad`` and ``<name>/accum_var`` (adadelta), ``<name>/m`` and ``<name>/v``
  (adam, adamw, adamax), ``<name>/rms``, ``<name>/momentum`` and, centered, ``<name>/mg``
  (rmsprop). Each slot has the variable's shape and dtype.
"""
from __future__ import annotations

import bisect
import difflib
import math
import numbers
import re
import sys
import threading
from typing import Any, Callable, Mapping, Sequence, TypedDict

import numpy as np

from . import autodiff, debug, dtypes, engine
from .ops import convert, scalar
from .backends import current
from .optim_codegen import UpdateRule, generate, load_rule, numpy_update_in_place
from .tensor import Tensor, WeakIdDict, buffers_lock, shape_str, variable_leaf
from .variables import Variable, registry

VariableGrads = autodiff.VariableGrads

EPSILON = 1e-7   # TF.js's backend.epsilon() on the cpu and webgl backends


class NamedTensor(TypedDict):
    """TF.js's NamedTensor: how apply_gradients, get_weights and set_weights list tensors."""
    name: str
    tensor: Tensor


# --- argument checks -------------------------------------------------------------------------


def _number(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (use float(t) for a scalar tensor)" if isinstance(value, Tensor) else ""
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__} {value!r}{hint}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{who}: {name} must be a number, got NaN.")
    return value


def _learning_rate(who: str, factory: str, value: Any) -> float:
    if value is None:
        raise TypeError(f"{who}: learning_rate must be given (TF.js silently computes NaN without "
                        f"one); pass a positive number, e.g. tf.train.{factory}(0.01).")
    value = _number(who, "learning_rate", value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{who}: learning_rate must be a positive finite number, got {value!r}.")
    return value


def _in_range(who: str, name: str, value: Any, low: float, high: float, high_open: bool = True) -> float:
    value = _number(who, name, value)
    ok = low <= value and (value < high if high_open else value <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{who}: {name} must be in [{low:g}, {high:g}{bracket}, got {value!r}.")
    return value


def _reject_unknown(who: str, options: Mapping[str, Any], valid: Sequence[str]) -> None:
    if not options:
        return
    name = next(iter(options))
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    guess = snake if snake in valid else next(iter(difflib.get_close_matches(name, valid, 1)), None)
    hint = f" Did you mean {guess!r}?" if guess else ""
    raise TypeError(f"{who}() got an unknown option {name!r}; its options are "
                    f"{', '.join(valid)}.{hint}")


# --- memory helpers ----------------------------------------------------------------------------


def _address_range(buf) -> tuple[int, int]:
    start = buf.__array_interface__["data"][0] if isinstance(buf, np.ndarray) else buf.data.ptr
    return start, start + buf.nbytes


def _contiguous(buf):
    return buf if buf.flags.c_contiguous else buf.copy()


def _refcount_of_a_local() -> int:
    probe = Tensor("buffer", (), None, (), dtypes.float32)
    return sys.getrefcount(probe)


# How many references sys.getrefcount reports for an object held by one local variable only;
# measured rather than assumed, as interpreters differ (3.14 borrows references).
_ALONE = _refcount_of_a_local() if hasattr(sys, "getrefcount") else None


def _retire_leaf(var: Variable) -> Tensor:
    """Give var a fresh leaf over its buffer before the buffer is updated in place (plan caches
    key graphs by node, as assign does), and return it: the step updates that leaf's buffer,
    not whatever var.value_node is by then (another thread may assign var meanwhile, and its
    new value must not be updated in place). A lazy expression built from the old value still
    holds the old leaf: it gets a private copy of the old values, as Variable promises."""
    old = var.value_node
    if _ALONE is not None and sys.getrefcount(old) <= _ALONE + 1:
        # Held by var (and this local) only: nothing can see the update but through var, so
        # the leaf stays, and with it the key of every graph over it (a training step's
        # variable_grads then finds its plan by key, without a walk; see autodiff).
        return old
    leaf = var.value_node = variable_leaf(old.buf, old.shape, old.dtype)
    if _ALONE is None or sys.getrefcount(old) > _ALONE:
        old.buf = old.buf.copy()
    return leaf


class _State:
    """One variable's optimizer state: its step count and its slot arrays, by slot name."""

    __slots__ = ("step", "arrays")

    def __init__(self, arrays: dict):
        self.step = 0
        self.arrays = arrays


def _tensor(buf, shape: tuple, dtype: str) -> Tensor:
    """A computed tensor over a backend buffer (the buffer becomes the tensor's)."""
    return Tensor("buffer", (), None, shape, dtype, buf)


def _int_scalar(n: int) -> Tensor:
    return scalar(n, "int32")


def _named_map(who: str, items: Any, api: str) -> Mapping[Any, Any]:
    """A mapping as it is; TF.js's list of {'name': ..., 'tensor': ...} as a dict by name."""
    if isinstance(items, Mapping):
        return items
    if not isinstance(items, (list, tuple)) or (
            len(items) == 2 and isinstance(items[1], Mapping) and isinstance(items[0], Tensor)):
        return items   # _prepare explains what is wrong with it
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) != {"name", "tensor"}:
            raise TypeError(
                f"{who}.{api}: item {i} of the list is {type(item).__name__} "
                f"{item if isinstance(item, Mapping) else ''}; each must be a dict "
                "{'name': variable name, 'tensor': tensor} (TF.js's NamedTensor).")
        if item["name"] in out:
            raise ValueError(f"{who}.{api}: the list names {item['name']!r} twice (items "
                             f"{[j for j, x in enumerate(items) if x.get('name') == item['name']]}).")
        out[item["name"]] = item["tensor"]
    return out


def _count(who: str, name: str, value: Any) -> int:
    """A step or iteration count: a non-negative integer (scalar tensor, array or int)."""
    array = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
    if array.shape != () or array.dtype.kind not in "iuf" or not np.isfinite(array) \
            or array != np.floor(array) or array < 0:
        raise ValueError(f"{who}: {name!r} must be a non-negative integer scalar, got "
                         f"{array.dtype} of shape {list(array.shape)}: {array.tolist()!r}.")
    return int(array)


def _host_array(who: str, name: str, value: Any, var: Variable) -> np.ndarray:
    """value as a C-contiguous host copy, checked to have var's shape and dtype exactly (no
    silent casts: restored state is bitwise what was saved)."""
    if isinstance(value, Tensor):
        dtype, array = value.dtype, value.numpy()
    else:
        array = np.asarray(value)
        dtype = array.dtype.name
    if tuple(array.shape) != tuple(var.shape):
        raise ValueError(f"{who}: {name!r} has shape {list(array.shape)} but variable {var.name!r} "
                         f"has shape {list(var.shape)}; the weights belong to another model.")
    if dtype != var.dtype:
        raise TypeError(f"{who}: {name!r} is {dtype} but variable {var.name!r} is {var.dtype}; "
                        f"cast it to {var.dtype} first.")
    return np.array(array, dtype=dtypes.NUMPY[var.dtype], copy=True, order="C")


# --- the optimizer ---------------------------------------------------------------------------


class Optimizer:
    """Base class: subclasses name their update rule, its state slots (with initial values)
    and the per-step scalars the rule reads."""

    factory = ""              # its tf.train name, for messages
    rule_name = ""            # kernels/optim/<rule_name>.cu
    slot_init: dict = {}      # slot name -> initial value, in the rule's kernel order
    slot_names: dict = {}     # slot name -> its name in get_weights (TF.js's), where they differ

    def __init__(self, learning_rate: float, var_list: Sequence[Variable] | None = None):
        self.learning_rate = learning_rate
        self.iterations = 0
        # keyed by identity: == on variables is elementwise, so WeakKeyDictionary cannot key them
        self._states: "WeakIdDict[Variable, _State]" = WeakIdDict()
        self._lock = threading.Lock()
        self._built: dict[str, Variable] | None = None
        if var_list is not None:
            self._built = self._check_built_for(var_list)
        self._rule = self._load_rule()   # now: a broken rule file fails at construction

    @property
    def _who(self) -> str:
        return f"{type(self).__name__}"

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _learning_rate(self._who, self.factory, value)

    @property
    def rule(self) -> UpdateRule:
        """The parsed kernels/optim/<rule_name>.cu this optimizer runs."""
        return self._rule

    def _load_rule(self) -> UpdateRule:
        rule = load_rule(self.rule_name, tuple(self.slot_init))
        if set(rule.scalars) != set(self.scalars(1)):
            raise SyntaxError(f"{rule.path} reads the scalars {sorted(rule.scalars)} but "
                              f"{type(self).__name__} passes {sorted(self.scalars(1))}")
        return rule

    def scalars(self, t: int) -> dict[str, float]:
        """The rule's scalar hyperparameters for a variable's t-th update (t >= 1)."""
        raise NotImplementedError

    # --- TF.js API ---------------------------------------------------------------------------

    def minimize(self, f: Callable[[], Tensor], return_cost: bool = False,
                 var_list: Sequence[Variable] | None = None) -> Tensor | None:
        """One training step: the gradients of f by variable_grads, then their update. Returns
        the cost computed BEFORE the update when return_cost, else None (as TF.js). var_list
        defaults to the variables this optimizer was built for, else every trainable one."""
        if var_list is None and self._built is not None:
            var_list = list(self._built.values())
        value, grads = autodiff.variable_grads(f, var_list)
        cost = None
        if return_cost:  # a leaf of its own: the graph of f is not kept alive by the result
            cost = Tensor("buffer", (), None, value.shape, value.dtype, value.data_buffer())
        work = self._prepare(grads, "minimize")
        del value, grads  # lazy gradient graphs hold the variables' old leaves; let them go
        self._apply(work, cost)
        return cost

    def compute_gradients(self, f: Callable[[], Tensor],
                          var_list: Sequence[Variable] | None = None) -> "VariableGrads":
        """TF.js's computeGradients: (value, grads) of f as variable_grads computes them, for
        apply_gradients after any change (clipping, say). var_list defaults as in minimize.
        Under gpugrad.debug_nans(True) a non-finite gradient raises here, naming its variable."""
        if var_list is None and self._built is not None:
            var_list = list(self._built.values())
        return debug.variable_grads(f, var_list)

    def apply_gradients(self, grads: Mapping[Any, Any] | Sequence[NamedTensor]) -> None:
        """Update each variable named in grads in place: the dict variable_grads returns (keys
        may also be the Variable objects) or TF.js's list of {'name': ..., 'tensor': ...}.
        None entries are skipped, as in TF.js."""
        self._apply(self._prepare(_named_map(self._who, grads, "apply_gradients"), "apply_gradients"), None)

    def get_weights(self) -> list[NamedTensor]:
        """The optimizer's state as TF.js's list of {'name', 'tensor'}: 'iter' first, then per
        variable (sorted by name) '<name>/step' and its slots (see the module docstring)."""
        weights: list[NamedTensor] = [{"name": "iter", "tensor": _int_scalar(self.iterations)}]
        for var, (step, slots) in self._state_by_variable().items():
            weights.append({"name": f"{var.name}/step", "tensor": _int_scalar(step)})
            weights += [{"name": f"{var.name}/{slot}", "tensor": t} for slot, t in slots.items()]
        return weights

    def set_weights(self, weights: Sequence[NamedTensor] | Mapping[str, Any]) -> None:
        """Replace the optimizer's whole state with weights as get_weights lists them (or a dict
        name -> tensor or array). Everything is checked first: an unknown or missing entry, or
        a shape or dtype that differs from its variable's, raises naming it and changes nothing.
        Variables are found by name among those the optimizer was built for, else among the
        live variables; a variable not listed starts afresh."""
        who = f"{self._who}.set_weights"
        named = _named_map(self._who, weights, "set_weights")
        if not isinstance(named, Mapping):
            raise TypeError(f"{who}: weights must be a list of {{'name': ..., 'tensor': ...}} (as "
                            f"get_weights returns) or a dict name -> tensor, got {type(weights).__name__}.")
        if "iter" not in named:
            raise ValueError(f"{who}: the weights have no 'iter' entry (the optimizer's iteration "
                             "count, listed first by get_weights).")
        suffixes = ("step", *self.slot_names_public())
        entries: dict[Variable, dict[str, Any]] = {}
        for name, value in named.items():
            if name == "iter":
                continue
            var_name, _, suffix = name.rpartition("/") if isinstance(name, str) else ("", "", "")
            if not var_name or suffix not in suffixes:
                raise ValueError(
                    f"{who}: unknown weight {name!r}; {type(self).__name__} weights are 'iter' and "
                    f"'<variable name>/<entry>' with entry one of {list(suffixes)}.")
            var = self._variable_named(who, var_name)
            entries.setdefault(var, {})[suffix] = value
        self._stage_restore(who, named["iter"], entries)()

    computeGradients = compute_gradients
    applyGradients = apply_gradients
    getWeights = get_weights
    setWeights = set_weights

    # --- state as named values (get_weights / set_weights / gpugrad.save) ------------------------

    def slot_names_public(self) -> list[str]:
        """This optimizer's slot names as its weights name them (TF.js's), in kernel order."""
        return [self.slot_names.get(s, s) for s in self.slot_init]

    def _state_by_variable(self) -> dict[Variable, tuple[int, dict[str, Tensor]]]:
        """{variable: (step, {public slot name: copy as a tensor})} for every live variable
        with state, in sorted name order (a disposed one's name may belong to another now)."""
        with self._lock:
            items = [(v, s) for v, s in self._states.items() if not v.disposed]
        items.sort(key=lambda item: item[0].name)
        return {var: (state.step, {self.slot_names.get(k, k): _tensor(arr.copy(), var.shape, var.dtype)
                                   for k, arr in state.arrays.items()})
                for var, state in items}

    def _variable_named(self, who: str, name: str) -> Variable:
        var = self._built.get(name) if self._built is not None else registry.get(name)
        if var is None:
            where = (f"this optimizer was built for {sorted(self._built)}" if self._built is not None
                     else "no live variable has that name")
            raise ValueError(f"{who}: the weights hold state for variable {name!r}, but {where}; "
                             "create the variable (same name) before restoring, or leave its "
                             "entries out.")
        return var

    def _stage_restore(self, who: str, iterations: Any,
                       entries: Mapping[Variable, Mapping[str, Any]]) -> Callable[[], None]:
        """Check a new state (iterations, and per variable {'step': count, public slot name:
        values}) and copy it to the device; returns the function that swaps it in at once.
        gpugrad.load stages this before it assigns any variable, so nothing changes on error."""
        iterations = _count(who, "iter", iterations)
        public = self.slot_names_public()
        prepared = []
        for var, values in entries.items():
            if var.disposed:
                raise ValueError(f"{who}: variable {var.name!r} was disposed; its state cannot be restored.")
            self._check_float(var)
            missing = [k for k in ("step", *public) if k not in values]
            if missing:
                raise ValueError(f"{who}: the state of variable {var.name!r} lacks "
                                 f"{[f'{var.name}/{k}' for k in missing]}; give every entry that "
                                 "get_weights lists for it.")
            step = _count(who, f"{var.name}/step", values["step"])
            arrays = {}
            for internal, name in zip(self.slot_init, public):
                arrays[internal] = _host_array(who, f"{var.name}/{name}", values[name], var)
            prepared.append((var, step, arrays))
        backend = current()
        states: "WeakIdDict[Variable, _State]" = WeakIdDict()
        for var, step, arrays in prepared:   # (device copies first: a failure here changes nothing)
            state = _State({k: backend.asarray(a, var.dtype) for k, a in arrays.items()})
            state.step = step
            states[var] = state

        def commit() -> None:
            with self._lock:
                self._states = states
                self.iterations = iterations
        return commit

    def slots(self, variable: Variable) -> dict[str, Tensor]:
        """Copies of the optimizer's state for variable (empty before its first update)."""
        state = self._states.get(variable)
        if state is None:
            return {}
        return {name: Tensor("buffer", (), None, variable.shape, variable.dtype, arr.copy())
                for name, arr in state.arrays.items()}

    def step_count(self, variable: Variable) -> int:
        """How many updates variable has had from this optimizer."""
        state = self._states.get(variable)
        return 0 if state is None else state.step

    def dispose(self) -> None:
        """Drop all state (TF.js frees its slot variables)."""
        with self._lock:
            self._states = WeakIdDict()

    def __repr__(self) -> str:
        return f"<gpugrad {type(self).__name__} learning_rate={self.learning_rate:g} iterations={self.iterations}>"

    # --- checks: everything is validated before anything is written ----------------------------

    def _check_built_for(self, var_list) -> dict[str, Variable]:
        if not isinstance(var_list, (list, tuple)) or not all(isinstance(v, Variable) for v in var_list):
            raise TypeError(f"{self._who}: var_list must be a list of variables (tf.variable(...)), "
                            f"got {type(var_list).__name__}.")
        for v in var_list:
            self._check_float(v)
        return {v.name: v for v in var_list}

    def _check_float(self, var: Variable) -> None:
        if var.dtype not in dtypes.FLOATS:
            raise TypeError(
                f"{self._who}: variable {var.name!r} is {var.dtype}; optimizers update float32 and "
                f"float64 variables only. Create it with dtype='float32', or make it "
                f"trainable=False so that minimize() leaves it out.")

    def _lookup(self, key: Any, names: list) -> Variable:
        if isinstance(key, Variable):
            var = key
        elif isinstance(key, str):
            var = self._built.get(key) if self._built is not None else registry.get(key)
            if var is None and self._built is None:
                raise KeyError(
                    f"{self._who}: there is no variable named {key!r} (gradients were given for "
                    f"{names}); pass the grads dict that variable_grads returns, whose keys name "
                    "live variables.")
        else:
            raise TypeError(f"{self._who}: gradient keys must be variable names or variables, got "
                            f"{type(key).__name__} {key!r}.")
        if self._built is not None and (var is None or self._built.get(var.name) is not var):
            raise KeyError(
                f"{self._who}: got a gradient for variable {getattr(var, 'name', key)!r}, but this "
                f"optimizer was built for {sorted(self._built)}; build one for that variable too "
                "(var_list=...) or leave it out of the gradients.")
        if var.disposed:
            raise ValueError(f"{self._who}: variable {var.name!r} was disposed; it cannot be updated.")
        return var

    def _prepare(self, grads: Mapping[Any, Any], api: str) -> list[tuple[Variable, Any]]:
        """Check every gradient against its variable and realize them: (variable, buffer) pairs."""
        if isinstance(grads, tuple) and len(grads) == 2 and isinstance(grads[1], Mapping):
            raise TypeError(f"{self._who}.{api}: pass the grads dict (variable_grads(f).grads), "
                            "not the (value, grads) pair.")
        if not isinstance(grads, Mapping):
            raise TypeError(f"{self._who}.{api}: gradients must be a dict of variable name -> "
                            f"tensor (as variable_grads returns) or a list of {{'name': ..., "
                            f"'tensor': ...}}, got {type(grads).__name__}.")
        names = [getattr(k, "name", k) for k in grads]
        pairs, seen = [], {}
        for key, g in grads.items():
            if g is None:   # a non-trainable variable listed explicitly: skipped, as TF.js
                continue
            var = self._lookup(key, names)
            if id(var) in seen:
                raise ValueError(f"{self._who}.{api}: two gradients for variable {var.name!r}.")
            seen[id(var)] = var
            self._check_float(var)
            if isinstance(g, Tensor):
                g = g._node()
            else:
                try:
                    g = convert(g, var.dtype)
                except (TypeError, ValueError) as exc:  # say whose gradient it is
                    raise type(exc)(
                        f"{self._who}.{api}: the gradient for variable {var.name!r} cannot be "
                        f"made a tensor: {exc} Pass a tensor or a numeric array of shape "
                        f"{list(var.shape)}; nothing was updated.") from exc
            if g.shape != var.shape:
                raise ValueError(
                    f"{self._who}.{api}: the gradient for variable {var.name!r} has shape "
                    f"{list(g.shape)} but the variable has shape {list(var.shape)} "
                    f"('{shape_str(g.shape)}' vs '{shape_str(var.shape)}').")
            if g.dtype != var.dtype:
                raise TypeError(
                    f"{self._who}.{api}: the gradient for variable {var.name!r} is {g.dtype} but the "
                    f"variable is {var.dtype}; cast it with tf.cast(grad, {var.dtype!r}).")
            pairs.append((var, g))
        engine.realize([g for _, g in pairs])
        if debug.enabled():   # before anything is written: a NaN step changes nothing
            debug.check_finite([(var.name, g) for var, g in pairs], f"{self._who}.{api}")
        return [(var, _contiguous(g.buf)) for var, g in pairs if var.size]

    # --- the update ------------------------------------------------------------------------------

    def _apply(self, pairs: list[tuple[Variable, Any]], cost: Tensor | None) -> None:
        with self._lock:
            backend = current()
            runner = getattr(backend, "run_update", None)
            rule = self._rule
            groups: dict[tuple, list] = {}
            new_states = {}
            for var, g in pairs:
                state = self._states.get(var)
                if state is None:
                    state = new_states[var] = _State({
                        name: backend.asarray(np.full(var.shape, init, dtypes.NUMPY[var.dtype]), var.dtype)
                        for name, init in self.slot_init.items()})
                groups.setdefault((var.dtype, state.step + 1), []).append((var, g, state))
            # Compile before anything is written: a failing compile changes nothing.
            programs = {dt: generate(rule, dt) if runner else numpy_update_in_place(rule, dt) for dt, _ in groups}
            if runner:
                for program in programs.values():
                    backend.compile(program)   # cached by source after the first step
            # The write lock: no plan reads a variable while its buffer is half updated
            # (another thread's variable_grads sees it before or after this step).
            with buffers_lock.writing():
                updated = {id(var): _retire_leaf(var).buf for var, _ in pairs}
                pairs = self._unalias(pairs, cost, updated)
                grad_of = {id(var): g for var, g in pairs}
                for (dt, t), members in groups.items():
                    arrays = [[updated[id(var)] for var, _, _ in members],
                              [grad_of[id(var)] for var, _, _ in members]]
                    arrays += [[state.arrays[name] for _, _, state in members] for name in self.slot_init]
                    scalars = self.scalars(t)
                    if runner:
                        runner(programs[dt], arrays, scalars)
                    else:
                        _run_numpy(programs[dt], rule, dt, arrays, scalars)
            for var, state in new_states.items():
                self._states[var] = state
            for _, members in groups.items():
                for _, _, state in members:
                    state.step += 1
            self.iterations += 1

    @staticmethod
    def _unalias(pairs, cost, updated):
        """Gradients (and the returned cost) that share memory with a buffer being updated
        (a gradient given as a variable's own tensor, say) are copied first."""
        written = sorted(_address_range(updated[id(var)]) for var, _ in pairs)
        starts = [s for s, _ in written]

        def overlaps(buf) -> bool:
            if not buf.nbytes:
                return False
            s, e = _address_range(buf)
            k = bisect.bisect_left(starts, e) - 1   # the written range starting last before e
            return k >= 0 and written[k][1] > s

        if cost is not None and overlaps(cost.buf):
            cost.buf = cost.buf.copy()
        return [(var, g.copy() if overlaps(g) else g) for var, g in pairs]


# Elements per numpy call in the numpy executor, as bytes: temporaries this small stay in
# cache and under malloc's mmap threshold (128 KiB). Whole-array temporaries of a large
# variable come back as fresh pages every step, and those page faults made the update 3-4x
# slower (measured: Adam on a 256x256 float32 variable, 1.0 ms whole vs 0.3 ms chunked).
CHUNK_BYTES = 1 << 16


def _run_numpy(update, rule: UpdateRule, dtype: str, arrays: list[list], scalars: dict) -> None:
    """The numpy executor: the rule's statements over each variable's arrays, chunk by chunk,
    each result written back in place."""
    t = dtypes.NUMPY[dtype]
    args = [t.type(scalars[s]) for s in rule.scalars]
    step = CHUNK_BYTES // t.itemsize
    with np.errstate(all="ignore"):   # NaN and Inf flow through as IEEE values, as on the GPU
        for per_var in zip(*arrays):
            flat = [a.reshape(-1) for a in per_var]   # views: every buffer is contiguous
            for start in range(0, flat[0].size, step):
                part = [a[start:start + step] for a in flat]
                update(*part, *args)   # writes w and the states in place


# --- the optimizers ----------------------------------------------------------------------------


class SGDOptimizer(Optimizer):
    """w -= learning_rate * g."""
    factory = rule_name = "sgd"

    def __init__(self, learning_rate: float, *, var_list=None, **options):
        _reject_unknown("sgd", options, ["learning_rate", "var_list"])
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate}


class MomentumOptimizer(Optimizer):
    """a = momentum * a + g; w -= learning_rate * a (Nesterov: w -= lr * (g + momentum * a))."""
    factory = "momentum"
    slot_init = {"a": 0.0}
    slot_names = {"a": "momentum"}

    def __init__(self, learning_rate: float, momentum: float, use_nesterov: bool = False, *,
                 var_list=None, **options):
        _reject_unknown("momentum", options, ["learning_rate", "momentum", "use_nesterov", "var_list"])
        if momentum is None:
            raise TypeError("MomentumOptimizer: momentum must be given, e.g. tf.train.momentum(0.01, 0.9).")
        self.momentum = _in_range("MomentumOptimizer", "momentum", momentum, 0.0, math.inf, False)
        self.use_nesterov = bool(use_nesterov)
        self.rule_name = "momentum_nesterov" if self.use_nesterov else "momentum"
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "m": self.momentum}


class AdagradOptimizer(Optimizer):
    """acc += g^2; w -= learning_rate * g / sqrt(acc + eps)."""
    factory = rule_name = "adagrad"
    slot_names = {"acc": "accumulator"}

    def __init__(self, learning_rate: float, initial_accumulator_value: float = 0.1, *,
                 var_list=None, **options):
        _reject_unknown("adagrad", options, ["learning_rate", "initial_accumulator_value", "var_list"])
        init = _in_range("AdagradOptimizer", "initial_accumulator_value", initial_accumulator_value,
                         0.0, math.inf, False)
        self.initial_accumulator_value = init
        self.slot_init = {"acc": init}
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "eps": EPSILON}


class AdadeltaOptimizer(Optimizer):
    """Zeiler's Adadelta (the paper's order, unlike TF.js; see kernels/optim/adadelta.cu)."""
    factory = rule_name = "adadelta"
    slot_init = {"sq": 0.0, "dx": 0.0}
    slot_names = {"sq": "accum_grad", "dx": "accum_var"}

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float | None = None,
                 *, var_list=None, **options):
        _reject_unknown("adadelta", options, ["learning_rate", "rho", "epsilon", "var_list"])
        self.rho = _in_range("AdadeltaOptimizer", "rho", rho, 0.0, 1.0)
        self.epsilon = _epsilon("AdadeltaOptimizer", epsilon)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "rho": self.rho, "eps": self.epsilon}


def _epsilon(who: str, epsilon: float | None) -> float:
    return EPSILON if epsilon is None else _in_range(who, "epsilon", epsilon, 0.0, math.inf, False)


class AdamOptimizer(Optimizer):
    """Adam with bias correction; see kernels/optim/adam.cu."""
    factory = rule_name = "adam"
    slot_init = {"m": 0.0, "v": 0.0}
    _options = ["learning_rate", "beta1", "beta2", "epsilon", "var_list"]

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, *, var_list=None, **options):
        _reject_unknown(self.factory, options, self._options)
        who = type(self).__name__
        self.beta1 = _in_range(who, "beta1", beta1, 0.0, 1.0)
        self.beta2 = _in_range(who, "beta2", beta2, 0.0, 1.0)
        self.epsilon = _epsilon(who, epsilon)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "b1": self.beta1, "b2": self.beta2, "eps": self.epsilon,
                "bc1": 1 - self.beta1 ** t, "bc2": 1 - self.beta2 ** t}


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW). Not in TF.js;
    its epsilon defaults to TF.js's 1e-7 like the other optimizers here, weight_decay to
    PyTorch's 0.01."""
    factory = rule_name = "adamw"
    _options = AdamOptimizer._options[:-1] + ["weight_decay", "var_list"]

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, weight_decay: float = 0.01, *, var_list=None, **options):
        self.weight_decay = _in_range("AdamWOptimizer", "weight_decay", weight_decay, 0.0, math.inf, False)
        super().__init__(learning_rate, beta1, beta2, epsilon, var_list=var_list, **options)

    def scalars(self, t):
        return dict(super().scalars(t), wd=self.weight_decay)


class AdamaxOptimizer(Optimizer):
    """Adamax, with TF.js's learning-rate decay lr / (1 + decay * (t - 1))."""
    factory = rule_name = "adamax"
    slot_init = {"m": 0.0, "u": 0.0}
    slot_names = {"u": "v"}

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, decay: float = 0.0, *, var_list=None, **options):
        _reject_unknown("adamax", options, ["learning_rate", "beta1", "beta2", "epsilon", "decay", "var_list"])
        self.beta1 = _in_range("AdamaxOptimizer", "beta1", beta1, 0.0, 1.0)
        self.beta2 = _in_range("AdamaxOptimizer", "beta2", beta2, 0.0, 1.0)
        self.epsilon = _epsilon("AdamaxOptimizer", epsilon)
        self.decay = _in_range("AdamaxOptimizer", "decay", decay, 0.0, math.inf, False)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate / (1 + self.decay * (t - 1)), "b1": self.beta1,
                "b2": self.beta2, "eps": self.epsilon, "bc1": 1 - self.beta1 ** t}


class RMSPropOptimizer(Optimizer):
    """RMSProp with momentum; centered as in Graves 2013 (see kernels/optim/rmsprop_centered.cu)."""
    factory = "rmsprop"
    slot_names = {"s": "rms", "mom": "momentum"}

    def __init__(self, learning_rate: float, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float | None = None, centered: bool = False, *, var_list=None, **options):
        _reject_unknown("rmsprop", options,
                        ["learning_rate", "decay", "momentum", "epsilon", "centered", "var_list"])
        if learning_rate is None:  # TF.js's own message, with the fix
            raise TypeError("learningRate for RMSPropOptimizer must be defined; pass a positive "
                            "number, e.g. tf.train.rmsprop(0.01).")
        self.decay = _in_range("RMSPropOptimizer", "decay", decay, 0.0, 1.0)
        self.momentum = _in_range("RMSPropOptimizer", "momentum", momentum, 0.0, math.inf, False)
        self.epsilon = _epsilon("RMSPropOptimizer", epsilon)
        self.centered = bool(centered)
        self.rule_name = "rmsprop_centered" if self.centered else "rmsprop"
        self.slot_init = {"s": 0.0, "mg": 0.0, "mom": 0.0} if self.centered else {"s": 0.0, "mom": 0.0}
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "d": self.decay, "mu": self.momentum, "eps": self.epsilon}


# --- tf.train factories (TF.js's names, argument order and defaults) -------------------------------


def sgd(learning_rate: float | None = None, **options) -> SGDOptimizer:
    """tf.train.sgd(learningRate)."""
    return SGDOptimizer(learning_rate, **options)


def momentum(learning_rate: float | None = None, momentum: float | None = None,
             use_nesterov: bool = False, **options) -> MomentumOptimizer:
    """tf.train.momentum(learningRate, momentum, useNesterov = false)."""
    return MomentumOptimizer(learning_rate, momentum, use_nesterov, **options)


def adagrad(learning_rate: float | None = None, initial_accumulator_value: float = 0.1,
            **options) -> AdagradOptimizer:
    """tf.train.adagrad(learningRate, initialAccumulatorValue = 0.1)."""
    return AdagradOptimizer(learning_rate, initial_accumulator_value, **options)


def adadelta(learning_rate: float = 0.001, rho: float = 0.95, epsilon: float | None = None,
             **options) -> AdadeltaOptimizer:
    """tf.train.adadelta(learningRate = .001, rho = .95, epsilon = 1e-7)."""
    return AdadeltaOptimizer(learning_rate, rho, epsilon, **options)


def adam(learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
         epsilon: float | None = None, **options) -> AdamOptimizer:
    """tf.train.adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7)."""
    return AdamOptimizer(learning_rate, beta1, beta2, epsilon, **options)


def adamw(learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
          epsilon: float | None = None, weight_decay: float = 0.01, **options) -> AdamWOptimizer:
    """Adam with decoupled weight decay (not in TF.js)."""
    return AdamWOptimizer(learning_rate, beta1, beta2, epsilon, weight_decay, **options)


def adamax(learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
           epsilon: float | None = None, decay: float = 0.0, **options) -> AdamaxOptimizer:
    """tf.train.adamax(learningRate = 0.002, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, decay = 0)."""
    return AdamaxOptimizer(learning_rate, beta1, beta2, epsilon, decay, **options)


def rmsprop(learning_rate: float | None = None, decay: float = 0.9, momentum: float = 0.0,
            epsilon: float | None = None, centered: bool = False, **options) -> RMSPropOptimizer:
    """tf.train.rmsprop(learningRate, decay = .9, momentum = 0, epsilon = 1e-7, centered = false)."""
    return RMSPropOptimizer(learning_rate, decay, momentum, epsilon, centered, **options)
