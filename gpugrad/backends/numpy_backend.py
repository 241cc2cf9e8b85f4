"""The numpy backend: runs every plan group on the CPU, with the snippets' math."""
from __future__ import annotations

import platform

import numpy as np

from .. import dtypes
from .interpret import run_group


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
        slots = [self.adopt(b) for b in inputs] + [None] * (len(plan.slot_specs) - len(inputs))
        with np.errstate(all="ignore"):  # NaN and Inf flow through as IEEE values
            for group, dead in zip(plan.groups, plan.free_after):
                run_group(group, slots, np)
                for s in dead:
                    slots[s] = None
        return [slots[s] if slots[s].shape == shape else slots[s].reshape(shape)
                for s, shape in plan.outputs]
