"""DistributedOptimizer: any tf.train optimizer, with gradients averaged over all ranks.

A step on every rank: variable_grads on the rank's shard of the batch -> pack the gradients
(and the cost) per dtype -> status exchange (did any rank fail? do all ranks pack alike?) ->
one gather per dtype bucket, summed in rank order, divided by the number of ranks -> the
wrapped optimizer's apply_gradients with the averages. Every rank applies bitwise the same
averages to bitwise the same variables (after broadcast_variables), so the variables stay
bitwise identical on every rank without ever being compared.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import gpugrad as tf
from gpugrad import Tensor, Variable

from gpugrad.distributed import state
from gpugrad.distributed.packing import DEFAULT_BUCKET_BYTES, Entry, PackedReduction, layout, layout_digest


# The cost's key among the gradients' names: it sorts after every name (U+10FFFF is the
# largest code point), so the cost rides at the end of its dtype's last bucket.
_COST = "\U0010ffff(cost)"


def buffer_of(t: Any):
    """The realized, contiguous backend array of a tensor (or of anything tf.tensor takes)."""
    t = t if isinstance(t, Tensor) else tf.tensor(t)
    buf = t.data_buffer()
    if not buf.flags.c_contiguous:
        buf = buf.copy().reshape(t.shape)
    return buf


class DistributedOptimizer:
    """Wraps ``optimizer`` (e.g. tf.train.adam(1e-3)); minimize and apply_gradients average the
    gradients of all ranks before the update. Everything else (learning_rate, iterations,
    slots, step_count, dispose, ...) is the wrapped optimizer's.

    var_list: the variables minimize() differentiates by default (else every trainable
    variable, as variable_grads); when the wrapped optimizer was built with a var_list, pass
    the same list here, since the gradients are computed before the wrapped optimizer sees them. bucket_bytes: the size above which a dtype's gradients are
    split into several collectives (default init(bucket_bytes=...), 16 MiB)."""

    def __init__(self, optimizer: Any, var_list: Sequence[Variable] | None = None,
                 bucket_bytes: int | None = None):
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed; wrap the "
                            "tf.train optimizer only once (gradients would be averaged twice).")
        if not (callable(getattr(optimizer, "apply_gradients", None))
                and callable(getattr(optimizer, "minimize", None))):
            raise TypeError(f"DistributedOptimizer wraps a tf.train optimizer (with minimize and "
                            f"apply_gradients), got {type(optimizer).__name__}.")
        self.optimizer = optimizer
        self.var_list = list(var_list) if var_list is not None else None
        self.bucket_bytes = bucket_bytes

    # --- the optimizer's interface ------------------------------------------------------------

    def minimize(self, f: Callable[[], Tensor], return_cost: bool = False,
                 var_list: Sequence[Variable] | None = None) -> Tensor | None:
        """One step: this rank's gradients of f, averaged over all ranks, then the update.
        With return_cost, the cost before the update averaged over all ranks (the global
        batch's cost when the shards are equal), the same tensor on every rank."""
        world = state.world()
        var_list = var_list if var_list is not None else self.var_list
        if world.size == 1:   # nothing to average: exactly the wrapped optimizer
            return self.optimizer.minimize(f, return_cost=return_cost, var_list=var_list)
        reduction, error, entries = None, None, []
        try:
            value, grads = tf.variable_grads(f, var_list)
            entries = [Entry(name, buffer_of(g)) for name, g in grads.items() if g is not None]
            if return_cost:
                entries.append(Entry(_COST, buffer_of(value).reshape(1)))
            reduction = self._pack(entries, world)
        except Exception as exc:   # told to every rank below, so that none waits for this one
            error = exc
        return self._finish(world, error, entries, reduction, {}, "minimize()", return_cost)

    def apply_gradients(self, grads: Mapping[Any, Any]) -> None:
        """Average grads (the dict variable_grads returns; keys may be Variables) over all
        ranks, then apply the averages. None entries are skipped, as by the wrapped optimizer."""
        world = state.world()
        if world.size == 1:
            return self.optimizer.apply_gradients(grads)
        reduction, error, entries, keys = None, None, [], {}
        try:
            if not isinstance(grads, Mapping):
                raise TypeError(f"DistributedOptimizer.apply_gradients: gradients must be a dict of "
                                f"variable name -> tensor, got {type(grads).__name__}.")
            for key, g in grads.items():
                if g is None:
                    continue
                name = key.name if isinstance(key, Variable) else str(key)
                keys[name] = key
                entries.append(Entry(name, buffer_of(g)))
            reduction = self._pack(entries, world)
        except Exception as exc:
            error = exc
        self._finish(world, error, entries, reduction, keys, "apply_gradients()", False)

    applyGradients = apply_gradients

    def __getattr__(self, name: str):
        # learning_rate, iterations, slots, step_count, dispose, rule, ...: the wrapped one's
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("optimizer", "var_list", "bucket_bytes"):
            object.__setattr__(self, name, value)
        else:   # e.g. opt.learning_rate = 1e-4 changes the wrapped optimizer's
            setattr(self.optimizer, name, value)

    def __repr__(self) -> str:
        return f"<gpugrad DistributedOptimizer of {self.optimizer!r}>"

    # --- the step ------------------------------------------------------------------------------

    def _pack(self, entries: list[Entry], world) -> PackedReduction:
        return PackedReduction(entries, world.rank, world.size,
                               self.bucket_bytes or state.bucket_bytes() or DEFAULT_BUCKET_BYTES)

    def _finish(self, world, error, entries, reduction, keys, what, return_cost):
        step = f"{what} step {self.optimizer.iterations + 1}"
        world.agree(error, layout_digest(entries), step, lambda: layout(entries))
        averaged = reduction.run(state.transport_for(entries), "mean", f"the gradients of {step}")
        cost = averaged.pop(_COST, None)
        self.optimizer.apply_gradients({keys.get(name, name): tf.tensor(buf, dtype=str(buf.dtype)) for name, buf in averaged.items()})
        return tf.tensor(cost.reshape(()), dtype=str(cost.dtype)) if return_cost else None
