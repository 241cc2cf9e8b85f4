"""numpy's floating-point error state, set to "ignore" cheaply: NaN and Inf flow through the
numpy backend's plans as IEEE values, as on the GPU.

np.errstate(all="ignore") costs about 2 us per use (a Python-level context manager that builds
a new error-state object each time); a cached-path call of a small graph is a few microseconds
in all. The same state is set here through the context variable errstate itself sets, with the
error-state object made once per enclosing state (so a caller's bufsize or callback is kept);
errstate is used where numpy does not have that variable.
"""
from __future__ import annotations

import numpy as np

try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
except ImportError:   # pragma: no cover - other numpy versions
    _extobj_contextvar = None

FAST = _extobj_contextvar is not None
_ignoring: dict = {}   # the state in force -> the same with every error ignored


def ignoring_in(outer):
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


def ignore_fp_errors():
    """np.errstate(all="ignore") entered, at a fraction of its cost; returns the token for
    restore_fp_errors."""
    if not FAST:   # pragma: no cover - other numpy versions
        state = np.errstate(all="ignore")
        state.__enter__()
        return state
    outer = _extobj_contextvar.get()
    inner = _ignoring.get(outer)
    return _extobj_contextvar.set(inner if inner is not None else ignoring_in(outer))


def restore_fp_errors(token) -> None:
    if not FAST:   # pragma: no cover
        token.__exit__(None, None, None)
    else:
        _extobj_contextvar.reset(token)


# The same, as lines of a generated function (one call fewer than ignore_fp_errors: the
# numpy backend's plan functions set it themselves): NAMESPACE holds what they name.
NAMESPACE = {"_fp_get": _extobj_contextvar.get, "_fp_set": _extobj_contextvar.set,
             "_fp_reset": _extobj_contextvar.reset, "_fp_ignoring": _ignoring,
             "_fp_ignoring_in": ignoring_in} if FAST else {"_np": np}


def wrapped_source(header: str, body: list[str]) -> list[str]:
    """The lines of a function, ``header`` and the lines of its ``body`` (as they would be
    written under it), that runs the body with floating-point errors ignored."""
    if not FAST:   # pragma: no cover - other numpy versions
        return [header, "    with _np.errstate(all='ignore'):", *("    " + ln for ln in body)]
    return [header,
            "    _fp_outer = _fp_get()",
            "    _fp_inner = _fp_ignoring.get(_fp_outer)",
            "    _fp_token = _fp_set(_fp_inner if _fp_inner is not None else _fp_ignoring_in(_fp_outer))",
            "    try:",
            *("    " + ln for ln in body),
            "    finally:",
            "        _fp_reset(_fp_token)"]
