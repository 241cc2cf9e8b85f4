"""The Optimizer: minimize, compute_gradients, apply_gradients (checks, then one update per
dtype), get_weights / set_weights, and the numpy execution of update rules.
"""
from __future__ import annotations

import bisect
import threading
from typing import Any, Callable, Mapping, Sequence, TypedDict

import numpy as np

from gpugrad.api import autodiff
from gpugrad.training import debug
from gpugrad.core import dtypes
from gpugrad.runtime import engine
from gpugrad.api.ops import convert
from gpugrad.backends import current
from gpugrad.backends.fp_state import ignore_fp_errors, restore_fp_errors
from gpugrad.compile.optim_codegen import UpdateRule, generate, load_rule, numpy_update_in_place
from gpugrad.core.tensor import Tensor, leaf, WeakIdDict, buffers_lock, shape_str
from gpugrad.api.variables import Variable, registry

from gpugrad.training.optimizers.checks import checked_learning_rate
from gpugrad.training.optimizers.state import SlotState, address_range, contiguous_buffer, checked_count, host_array, int_scalar, named_map, retire_leaf, tensor_over

__all__ = ['CHUNK_BYTES', 'EPSILON', 'NamedTensor', 'Optimizer', 'VariableGrads']

VariableGrads = autodiff.VariableGrads

EPSILON = 1e-7   # TF.js's backend.epsilon() on the cpu and webgl backends


class NamedTensor(TypedDict):
    """TF.js's NamedTensor: how apply_gradients, get_weights and set_weights list tensors."""
    name: str
    tensor: Tensor


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
        self._states: "WeakIdDict[Variable, SlotState]" = WeakIdDict()
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
        self._learning_rate = checked_learning_rate(self._who, self.factory, value)

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
            cost = leaf(value.data_buffer(), value.shape, value.dtype)
        work = self._prepare(grads, "minimize")
        del value, grads  # lazy gradient graphs hold the variables' old leaves; let them go
        # variable_grads' results are buffers of their own (engine.run_plan copies an input a
        # plan passes through), so none aliases a variable: no overlap test
        self._apply(work, cost, own_buffers=True)
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
        self._apply(self._prepare(named_map(self._who, grads, "apply_gradients"), "apply_gradients"), None)

    def get_weights(self) -> list[NamedTensor]:
        """The optimizer's state as TF.js's list of {'name', 'tensor'}: 'iter' first, then per
        variable (sorted by name) '<name>/step' and its slots (see the module docstring)."""
        weights: list[NamedTensor] = [{"name": "iter", "tensor": int_scalar(self.iterations)}]
        for var, (step, slots) in self._state_by_variable().items():
            weights.append({"name": f"{var.name}/step", "tensor": int_scalar(step)})
            weights += [{"name": f"{var.name}/{slot}", "tensor": t} for slot, t in slots.items()]
        return weights

    def set_weights(self, weights: Sequence[NamedTensor] | Mapping[str, Any]) -> None:
        """Replace the optimizer's whole state with weights as get_weights lists them (or a dict
        name -> tensor or array). Everything is checked first: an unknown or missing entry, or
        a shape or dtype that differs from its variable's, raises naming it and changes nothing.
        Variables are found by name among those the optimizer was built for, else among the
        live variables; a variable not listed starts afresh."""
        who = f"{self._who}.set_weights"
        named = named_map(self._who, weights, "set_weights")
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
        return {var: (state.step, {self.slot_names.get(k, k): tensor_over(arr.copy(), var.shape, var.dtype)
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
        iterations = checked_count(who, "iter", iterations)
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
            step = checked_count(who, f"{var.name}/step", values["step"])
            arrays = {}
            for internal, name in zip(self.slot_init, public):
                arrays[internal] = host_array(who, f"{var.name}/{name}", values[name], var)
            prepared.append((var, step, arrays))
        backend = current()
        states: "WeakIdDict[Variable, SlotState]" = WeakIdDict()
        for var, step, arrays in prepared:   # (device copies first: a failure here changes nothing)
            state = SlotState({k: backend.asarray(a, var.dtype) for k, a in arrays.items()})
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
        return {name: leaf(arr.copy(), variable.shape, variable.dtype)
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
        return [(var, contiguous_buffer(g.buf)) for var, g in pairs if var.size]

    # --- the update ------------------------------------------------------------------------------

    def _apply(self, pairs: list[tuple[Variable, Any]], cost: Tensor | None,
               own_buffers: bool = False) -> None:
        with self._lock:
            backend = current()
            runner = getattr(backend, "run_update", None)
            rule = self._rule
            groups: dict[tuple, list] = {}
            new_states = {}
            for var, g in pairs:
                state = self._states.get(var)
                if state is None:
                    state = new_states[var] = SlotState({
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
                updated = {id(var): retire_leaf(var).buf for var, _ in pairs}
                if not own_buffers:
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
        overlaps = _overlap_test([updated[id(var)] for var, _ in pairs])
        if cost is not None and overlaps(cost.buf):
            cost.buf = cost.buf.copy()
        return [(var, g.copy() if overlaps(g) else g) for var, g in pairs]


def _overlap_test(targets: list) -> Callable[[object], bool]:
    """A test of whether a buffer shares memory with any of targets (address bounds)."""
    if len(targets) <= 8 and all(t.__class__ is np.ndarray for t in targets):
        # a few numpy buffers: numpy's bounds test per pair (0.2 us) beats reading each
        # address through __array_interface__ (1 us); a device buffer is elsewhere
        def overlaps(buf) -> bool:
            return buf.__class__ is np.ndarray and any(np.may_share_memory(buf, t) for t in targets)
        return overlaps
    written = sorted(address_range(t) for t in targets)
    starts = [s for s, _ in written]

    def overlaps(buf) -> bool:
        if not buf.nbytes:
            return False
        s, e = address_range(buf)
        k = bisect.bisect_left(starts, e) - 1   # the written range starting last before e
        return k >= 0 and written[k][1] > s
    return overlaps


# Elements per numpy call in the numpy executor, as bytes: an update's few temporaries of
# a chunk stay in L2, and every variable smaller than a chunk is one call. Whole-array
# temporaries of a large variable came back as fresh pages every step (Adam 3-4x slower on
# a 256x256 variable). Measured 2026-11-30 (Adam, float32, 2-core x86_64, CPU time): 8.4M
# parameters in four variables 24.1 ms per update at 64 KiB chunks, 17.9 ms at 1 MiB,
# 18.5 ms at 2 MiB; 133k parameters 309 us at 64 KiB, 281 us at 1 MiB.
CHUNK_BYTES = 1 << 20


def _run_numpy(update, rule: UpdateRule, dtype: str, arrays: list[list], scalars: dict) -> None:
    """The numpy executor: the rule's statements over each variable's arrays, chunk by chunk,
    each result written back in place."""
    t = dtypes.NUMPY[dtype]
    args = [t.type(scalars[s]) for s in rule.scalars]
    step = CHUNK_BYTES // t.itemsize
    token = ignore_fp_errors()   # NaN and Inf flow through as IEEE values, as on the GPU
    try:
        for per_var in zip(*arrays):
            if per_var[0].size <= step:   # one chunk: the arrays as they are (no views to make)
                update(*per_var, *args)
                continue
            flat = [a.reshape(-1) for a in per_var]   # views: every buffer is contiguous
            for start in range(0, flat[0].size, step):
                part = [a[start:start + step] for a in flat]
                update(*part, *args)   # writes w and the states in place
    finally:
        restore_fp_errors(token)


