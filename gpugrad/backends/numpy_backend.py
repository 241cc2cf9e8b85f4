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

_ignoring: dict = {}


def _ignore_fp_errors():
    if _extobj_contextvar is None:
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    outer = _extobj_contextvar.get()
    inner = _ignoring.get(outer)
    if inner is None:
        if len(_ignoring) > 64:
            _ignoring.clear()
        token = _extobj_contextvar.set(outer)
        try:
            inner = _ignoring[outer] = _make_extobj(all="ignore")
        finally:
            _extobj_contextvar.reset(token)
    return _extobj_contextvar.set(inner)


def _restore_fp_errors(token) -> None:
    if _extobj_contextvar is None:
        token.__exit__(None, None, None)
    else:
        _extobj_contextvar.reset(token)


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
        slots = [b if b.__class__ is np.ndarray else self.adopt(b) for b in inputs]
        runner = plan.runners.get("numpy")
        if runner is None:
            if "numpy" in plan.runners:   # a repeated plan: worth its one function
                runner = plan.runners["numpy"] = compile_shared_plan(plan)
            else:                         # a first run: the loop (compiling costs more)
                plan.runners["numpy"] = None
                runner = lambda slots: run_plan(plan, slots, self.run_group)  # noqa: E731
        token = _ignore_fp_errors()  # NaN and Inf flow through as IEEE values
        try:
            return runner(slots)
        finally:
            _restore_fp_errors(token)

    @staticmethod
    def run_group(group, slots: list) -> None:
        run_group(group, slots, np)
