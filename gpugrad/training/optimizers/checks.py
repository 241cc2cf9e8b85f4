"""Argument checks shared by the optimizers: numbers, learning rates, ranges, unknown options.
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
from typing import Any, Mapping, Sequence

from gpugrad.core.tensor import Tensor


__all__ = ['checked_in_range', 'checked_learning_rate', 'reject_unknown_options']

# --- argument checks -------------------------------------------------------------------------


def _number(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = " (use float(t) for a scalar tensor)" if isinstance(value, Tensor) else ""
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__} {value!r}{hint}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{who}: {name} must be a number, got NaN.")
    return value


def checked_learning_rate(who: str, factory: str, value: Any) -> float:
    if value is None:
        raise TypeError(f"{who}: learning_rate must be given (TF.js silently computes NaN without "
                        f"one); pass a positive number, e.g. tf.train.{factory}(0.01).")
    value = _number(who, "learning_rate", value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{who}: learning_rate must be a positive finite number, got {value!r}.")
    return value


def checked_in_range(who: str, name: str, value: Any, low: float, high: float, high_open: bool = True) -> float:
    value = _number(who, name, value)
    ok = low <= value and (value < high if high_open else value <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{who}: {name} must be in [{low:g}, {high:g}{bracket}, got {value!r}.")
    return value


def reject_unknown_options(who: str, options: Mapping[str, Any], valid: Sequence[str]) -> None:
    if not options:
        return
    name = next(iter(options))
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    guess = snake if snake in valid else next(iter(difflib.get_close_matches(name, valid, 1)), None)
    hint = f" Did you mean {guess!r}?" if guess else ""
    raise TypeError(f"{who}() got an unknown option {name!r}; its options are "
                    f"{', '.join(valid)}.{hint}")


