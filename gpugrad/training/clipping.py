"""clip_by_global_norm, as TF's tf.clip_by_global_norm (TF.js has no counterpart)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

from gpugrad.core import dtypes
from gpugrad.api import ops as O
from gpugrad.core.tensor import Tensor


def clip_by_global_norm(tensors: Sequence[Any] | Mapping[Any, Any], clip_norm: float | Tensor,
                        use_norm: float | Tensor | None = None) -> tuple[Any, Tensor]:
    """(clipped, global_norm): every tensor scaled by clip_norm / max(global_norm, clip_norm),
    where global_norm = sqrt(sum of every tensor's squared L2 norm), so the clipped tensors
    together have norm at most clip_norm and keep their direction.

    tensors is a list (None entries pass through, as in TF) or a dict such as the gradients
    variable_grads returns (a dict comes back, same keys). The result is lazy: clipping fuses
    with the gradient computation and apply_gradients realizes it. global_norm is computed in
    float64 if any tensor is float64, else float32. As in TF, an infinite or NaN global norm
    makes every clipped entry NaN (debug_nans catches that in apply_gradients).
    """
    if isinstance(tensors, Mapping):
        keys = list(tensors)
        clipped, norm = clip_by_global_norm([tensors[k] for k in keys], clip_norm, use_norm)
        return dict(zip(keys, clipped)), norm
    if isinstance(tensors, (Tensor, str, bytes)) or not isinstance(tensors, Sequence):
        raise TypeError(f"clip_by_global_norm: tensors must be a list (or a dict) of tensors, got "
                        f"{type(tensors).__name__}; wrap a single tensor in a list.")
    items = [None if t is None else O.convert(t) for t in tensors]
    for i, t in enumerate(items):
        if t is not None and not dtypes.is_float(t.dtype):
            raise TypeError(f"clip_by_global_norm: tensor {i} is {t.dtype}; only float32 and float64 "
                            "tensors can be clipped (cast it, or leave it out).")
    present = [t for t in items if t is not None]
    norm_dtype = dtypes.float64 if any(t.dtype == dtypes.float64 for t in present) else dtypes.float32
    _check_clip_norm(clip_norm)
    if use_norm is None:
        total = O.zeros([], norm_dtype)
        for t in present:
            total = O.add(total, O.cast(O.sum(O.square(t)), norm_dtype))
        norm = O.sqrt(total)
    else:
        norm = O.cast(O.convert(use_norm, norm_dtype), norm_dtype)
        if norm.ndim:
            raise ValueError(f"clip_by_global_norm: use_norm must be a scalar, got shape {list(norm.shape)}.")
    limit = O.cast(O.convert(clip_norm, norm_dtype), norm_dtype)
    # clip_norm / max(norm, clip_norm): 1 below the limit. A NaN or infinite norm gives NaN
    # (inf / inf), as TF does, rather than silently zeroing the step.
    scale = O.where(O.is_finite(norm), O.div(limit, O.maximum(norm, limit)), math.nan)
    clipped = [None if t is None else O.mul(t, O.cast(scale, t.dtype)) for t in items]
    return clipped, norm


def _check_clip_norm(clip_norm: Any) -> None:
    if isinstance(clip_norm, Tensor):
        if clip_norm.ndim:
            raise ValueError(f"clip_by_global_norm: clip_norm must be a scalar, got shape "
                             f"{list(clip_norm.shape)}.")
        return
    if isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real) \
            or not (clip_norm > 0 and math.isfinite(clip_norm)):
        raise ValueError(f"clip_by_global_norm: clip_norm must be a positive finite number, got "
                         f"{clip_norm!r}.")
