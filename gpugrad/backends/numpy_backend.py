"""The numpy backend: runs every plan group on the CPU, with the snippets' math."""
from __future__ import annotations

import platform

import numpy as np

from .. import dtypes
from .interpret import run_group, run_plan


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
        with np.errstate(all="ignore"):  # NaN and Inf flow through as IEEE values
            return run_plan(plan, [self.adopt(b) for b in inputs], self.run_group)

    @staticmethod
    def run_group(group, slots: list) -> None:
        run_group(group, slots, np)
