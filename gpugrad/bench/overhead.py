"""`gpugrad bench --overhead`: the host cost of a cached `variable_grads` call, i.e. everything
but the kernel work.

The call runs with a stand-in backend installed: gpugrad's generic plan runner
(backends/generated.py, the loop the CuPy backend runs) whose kernels are no-op Python
functions and whose output buffers are allocated once and handed out again. What is timed is
therefore tracing f, the structural key and plan-cache lookup, the runner's walk over the plan
(slot list, argument tuples, one Python call per launch) and wrapping the results as tensors.
What is left out: the kernels, output allocation, and the cost of a real launch (DESIGN.md
measured a CuPy RawKernel launch from Python at 7.4 us) -- on a GPU add that per launch.
Matmul groups would still compute (they call cuBLAS/numpy directly); seed and chain have none.
"""
from __future__ import annotations

import collections
import contextlib

import numpy as np

from gpugrad import backends
from gpugrad.core import dtypes
from gpugrad.backends.generated import GeneratedKernelBackend

from gpugrad.bench import timing
from gpugrad.bench import workloads as W


def _no_kernel(grid, block, args) -> None:
    return None


# Any kernel name maps to the no-op: after the first lookup of a name it is a plain dict hit,
# as the real backend's per-group kernel table is.
_NO_KERNELS = collections.defaultdict(lambda: _no_kernel)


class NoKernelBackend(GeneratedKernelBackend):
    """The generic plan runner with kernels that do nothing; everything it does not override
    (asarray, device, ...) is the real backend's."""

    name = "bench-no-kernels"

    def __init__(self, real):
        self.real = real
        self.xp = getattr(real, "xp", np)
        self.array_type = self.xp.ndarray   # as CuPy's runner: its own arrays are not adopted
        self._buffers: dict = {}

    def __getattr__(self, attr):  # only reached for what this class does not define
        return getattr(self.real, attr)

    def kernels_for(self, group) -> dict:
        return _NO_KERNELS

    def empty(self, shape, dtype: str):
        # One buffer per (shape, dtype), reused: outputs of one shape alias, harmless as
        # nothing is ever computed into them.
        key = (tuple(shape), dtype)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = self.xp.empty(shape, dtype=dtypes.NUMPY[dtype])
        return buf


@contextlib.contextmanager
def _installed(backend):
    # gpugrad.backends has no public way to install a backend object (set_backend takes a
    # name), so the module's current backend is swapped here and always restored.
    saved = backends.current()
    backends._current = backend
    try:
        yield
    finally:
        backends._current = saved


def _using(backend, fn):
    def call():
        backends._current = backend
        return fn()
    return call


MAKERS = {"seed": W.seed, "chain": W.chain}


def measure(names=("seed", "chain"), n: int = 16, dtype: str = "float32", budget_s: float = 0.2,
            device: str = "cpu", done=lambda label: None) -> list[dict]:
    """One row per workload: microseconds per cached call with no-op kernels, and a real call
    of the same workload timed in the same rounds, for scale. done(label) after each."""
    import gpugrad as tf
    real = backends.current()
    fake = NoKernelBackend(real)
    rows = []
    for name in names:
        work = MAKERS[name](n, dtype, set())
        with _installed(real):
            # Each contender installs its backend before each call (a global assignment,
            # tens of nanoseconds), so the two can share the rounds.
            stats = timing.side_by_side({"no-kernels": (_using(fake, work.run), "cpu"),
                                         "real": (_using(real, work.run), device)}, budget_s)
        over, full = stats["no-kernels"], stats["real"]
        rows.append({"workload": name, "size": n, "dtype": dtype,
                     "overhead_us": over.median * 1e6, "p10_us": over.p10 * 1e6,
                     "p90_us": over.p90 * 1e6, "samples": len(over.samples), "batch": over.batch,
                     "samples_s": over.samples, "real_us": full.median * 1e6})
        for v in list(tf.variables.registered_variables()):
            v.dispose()
        done(f"overhead {name} n={n}")
    return rows
