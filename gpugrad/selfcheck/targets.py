"""The executors under test and the plan-level harness that compares them with numpy.

A target runs gpugrad's generated CUDA: the CuPy backend on a GPU, or the CPU emulator of the
generated kernels (gpugrad.backends.emulated) where there is no GPU. The reference is always
the numpy backend running the same plan, so a difference is a difference in kernels.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from gpugrad import backends
from gpugrad.backends.numpy_backend import NumpyBackend
from gpugrad.compile.schedule import build_plan, structure


@dataclass
class Target:
    name: str          # "cupy", "cuda-emulated" or "numpy"
    backend: Any       # has run(plan, inputs), asarray, adopt; run_update where update kernels run
    on_gpu: bool

    def to_host(self, buf) -> np.ndarray:
        return backends.to_numpy(buf)

    def device(self, array: np.ndarray):
        """A copy of array where this target keeps tensors."""
        if self.on_gpu:
            return self.backend.cupy.array(array)
        return np.array(array, copy=True, order="C")

    def sync(self) -> None:
        if self.on_gpu:
            self.backend.cupy.cuda.get_current_stream().synchronize()


def gpu_reason() -> str:
    """'' when the CuPy backend can run here, else why not."""
    from gpugrad.backends.cupy_backend import cupy_unavailable_reason
    return cupy_unavailable_reason()


def numpy_target() -> Target:
    return Target("numpy", NumpyBackend(), False)


def kernel_target() -> Target | None:
    """The generated kernels' executor: CuPy where a GPU is usable, else the CPU emulator
    (None when neither can run: no GPU and no C++ compiler)."""
    if not gpu_reason():
        from gpugrad.backends.cupy_backend import CupyBackend
        return Target("cupy", CupyBackend(), True)
    if shutil.which("g++") is None:
        return None
    from gpugrad.backends.emulated_optim import EmulatedUpdateBackend
    return Target("cuda-emulated", EmulatedUpdateBackend(), False)


@contextlib.contextmanager
def active(target: Target) -> Iterator[Target]:
    """Make target's backend the process-wide one for the block (public API calls such as
    variable_grads then run on it). The emulator is not a named backend, so the current
    backend object is swapped directly, as tests/test_optimizers.py does."""
    previous = backends._current
    backends._current = target.backend
    try:
        yield target
    finally:
        backends._current = previous


def plan_of(outputs: Sequence) -> tuple[Any, list]:
    """The plan that computes outputs (lazy tensors) and its input buffers, uncached."""
    nodes_out = [o._node() for o in outputs]
    _, leaves, nodes = structure(nodes_out)
    return build_plan(nodes_out, nodes), [leaf.buf for leaf in leaves]


def run_both(outputs: Sequence, target: Target) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(numpy backend's results, target's results) of one plan, as host arrays."""
    plan, inputs = plan_of(outputs)
    return run_plan_both(plan, inputs, target)


def run_plan_both(plan, inputs: list, target: Target) -> tuple[list[np.ndarray], list[np.ndarray]]:
    want = [np.asarray(w) for w in NumpyBackend().run(plan, inputs)]
    got = [target.to_host(g) for g in target.backend.run(plan, inputs)]
    return want, got
