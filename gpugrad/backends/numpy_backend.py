"""The numpy backend: runs every plan group on the CPU, with the snippets' math."""
from __future__ import annotations

import platform

import numpy as np

from gpugrad.core import dtypes
from gpugrad.backends.interpret import compile_shared_plan, run_group, run_plan


# np.errstate(all="ignore") costs about 2 us per use (a Python-level context manager that
# builds a new error-state object each time); a cached-path call of a small graph is a few
# microseconds in all. The same state is set here through the context variable errstate
# itself sets, with the error-state object made once per enclosing state (so a caller's
# bufsize or callback is kept); errstate is used where numpy does not have that variable.
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
except ImportError:   # pragma: no cover - other numpy versions
    _extobj_contextvar = None

_ignoring: dict = {}   # the state in force -> the same with every error ignored

_ndarray = np.ndarray   # one global lookup per input in run(), not two


def _ignoring_in(outer):
    """The error state ``outer`` with every floating-point error ignored, made once."""
    inner = _ignoring.get(outer)
    if inner is None:
        if len(_ignoring) > 64:
            _ignoring.clear()
        token = _extobj_contextvar.set(outer)
        try:
            inner = _ignoring[outer] = _make_extobj(all="ignore")
        finally:
            _extobj_contextvar.reset(token)
    return inner


if _extobj_contextvar is not None:
    _get_fp_state, _set_fp_state, _reset_fp_state = (
        _extobj_contextvar.get, _extobj_contextvar.set, _extobj_contextvar.reset)


def ignore_fp_errors():
    """np.errstate(all="ignore") entered, at a fraction of its cost; returns the token for
    restore_fp_errors."""
    if _extobj_contextvar is None:   # pragma: no cover - other numpy versions
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    outer = _get_fp_state()
    inner = _ignoring.get(outer)
    return _set_fp_state(inner if inner is not None else _ignoring_in(outer))


def restore_fp_errors(token) -> None:
    if _extobj_contextvar is None:   # pragma: no cover
        token.__exit__(None, None, None)
    else:
        _reset_fp_state(token)


class NumpyBackend:
    name = "numpy"

    def device(self) -> str:
        return f"CPU ({platform.processor() or platform.machine()}), numpy {np.__version__}"

    def asarray(self, array, dtype: str) -> np.ndarray:
        if not isinstance(array, np.ndarray) and hasattr(array, "get"):
            array = array.get()  # a CuPy array brought to the host
        return np.array(array, dtype=dtypes.NUMPY[dtype], copy=True, order="C")

    def adopt(self, buf) -> np.ndarray:
        if isinstance(buf, np.ndarray):
            return buf
        return np.asarray(buf.get() if hasattr(buf, "get") else buf)

    def run(self, plan, inputs: list) -> list:
        for b in inputs:
            if b.__class__ is not _ndarray:
                inputs = [self.adopt(b) for b in inputs]
                break
        runner = plan.runners.get("numpy")
        if runner is None:
            if "numpy" in plan.runners:   # a repeated plan: worth its one function
                runner = plan.runners["numpy"] = compile_shared_plan(plan)
            else:                         # a first run: the loop (compiling costs more)
                plan.runners["numpy"] = None
                runner = lambda slots: run_plan(plan, list(slots), self.run_group)  # noqa: E731
        # NaN and Inf flow through as IEEE values
        if _extobj_contextvar is None:   # pragma: no cover - other numpy versions
            with np.errstate(all="ignore"):
                return runner(inputs)
        outer = _get_fp_state()
        inner = _ignoring.get(outer)
        token = _set_fp_state(inner if inner is not None else _ignoring_in(outer))
        try:
            return runner(inputs)
        finally:
            _reset_fp_state(token)

    @staticmethod
    def run_group(group, slots: list) -> None:
        run_group(group, slots, np)
