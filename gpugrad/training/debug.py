"""debug_nans: stop at the first non-finite gradient, naming its variable (as jax_debug_nans).

Off by default: the check reads a count back from the device, a synchronization that a
training step otherwise never makes. When on, it runs

* on what ``tf.variable_grads`` / ``opt.compute_gradients`` return (the gradients, then the
  value of f), and
* on the gradients an optimizer is about to apply (``apply_gradients`` and ``minimize``),
  before any variable or optimizer state is written, so a NaN step changes nothing.

The environment variable GPUGRAD_DEBUG_NANS=1 turns it on at import.

The variable_grads check wraps the public ``gpugrad.variable_grads`` (gpugrad.api.autodiff stays
untouched), so ``gpugrad.api.autodiff.variable_grads`` called directly and grad / grads /
value_and_grad are not checked; the optimizers check what they apply whatever computed it.
"""
from __future__ import annotations

import functools
import os
from typing import Callable, Sequence

import numpy as np

from gpugrad.api import autodiff
from gpugrad.api import ops as O
from gpugrad.core.tensor import Tensor, trace

_enabled = os.environ.get("GPUGRAD_DEBUG_NANS", "").strip().lower() not in ("", "0", "false", "no", "off")


def debug_nans(enabled: bool | None = None) -> bool:
    """Turn the non-finite gradient check on (True) or off (False); returns the setting it
    replaced. With no argument, only returns the current setting."""
    global _enabled
    previous = _enabled
    if enabled is not None:
        if not isinstance(enabled, (bool, np.bool_)):
            raise TypeError(f"debug_nans(enabled): enabled must be True or False, got {enabled!r}.")
        _enabled = bool(enabled)
    return previous


def enabled() -> bool:
    return _enabled


def _first_bad(t: Tensor) -> str:
    """'nan at index [0, 2]' for the first non-finite element of t (read back: error path)."""
    values = t.numpy()
    index = np.argwhere(~np.isfinite(values))[0]
    return f"{values[tuple(index)]} at index {index.tolist()}"


def check_finite(named: Sequence[tuple[str, Tensor]], api: str, value: Tensor | None = None) -> None:
    """Raise FloatingPointError naming the first gradient (in the given order) that holds a NaN
    or an infinity, else the value if it does. One small read-back: a count per tensor, all
    computed by one plan."""
    named = [(name, g) for name, g in named if g is not None and g.size]
    checked = named + ([("", value)] if value is not None and value.size else [])
    if not checked:
        return
    counts = O.stack([O.sum(O.cast(O.logical_not(O.is_finite(g)), "int32")) for _, g in checked]).numpy()
    for (name, g), count in zip(checked, counts):
        if not count:
            continue
        where = f"{api}: " if api else ""
        shape = f"shape {list(g.shape)}, {g.dtype}"
        if name == "":
            raise FloatingPointError(
                f"debug_nans: {where}the value of f ({shape}) has {count} non-finite value(s), the "
                f"first {_first_bad(g)}; its gradients are finite. Turn this check off with "
                "gpugrad.debug_nans(False).")
        raise FloatingPointError(
            f"debug_nans: {where}the gradient for variable {name!r} ({shape}) has {count} non-finite "
            f"value(s), the first {_first_bad(g)}. Nothing was updated. Look for log or sqrt of "
            "values <= 0, division by zero or overflowing exp in f (or a too large learning rate); "
            "turn this check off with gpugrad.debug_nans(False).")


def _nested() -> bool:
    """Inside another differentiation the gradients are graph, not values: nothing to check."""
    return trace.depth > 0


@functools.wraps(autodiff.variable_grads)
def variable_grads(f: Callable[[], Tensor], var_list: Sequence | None = None) -> autodiff.VariableGrads:
    result = autodiff.variable_grads(f, var_list)
    if _enabled and not _nested():
        check_finite(list(result.grads.items()), "variable_grads", result.value)
    return result
