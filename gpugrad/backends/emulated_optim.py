"""Runs the generated multi-tensor update kernels (gpugrad/compile/optim_codegen.py) on the CPU.

A sibling of emulated.py, whose compiled programs it reuses: every block runs its blockDim
threads, checked. The kernel reads its tensors through a table of pointers in ``meta`` (host
addresses here), so the runtime cannot know their extents; instead each tensor is copied into
a buffer with guard zones on both sides (NaN, so that a read from there poisons the result),
and a launch that changed a guard raises KernelCheckError."""
from __future__ import annotations

import numpy as np

from gpugrad.backends.emulated import EmulatedCudaBackend, KernelCheckError, kernel_origin, load

GUARD = 64   # elements on each side of every tensor


class _Guarded:
    """A copy of one tensor between two guard zones."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.buffer = np.full(array.size + 2 * GUARD, np.nan, dtype=array.dtype)
        self.inner = self.buffer[GUARD:GUARD + array.size]
        self.inner[...] = array.reshape(-1)
        self.guards = self.buffer.view(np.uint8).copy()

    def changed_guards(self) -> list[int]:
        """Indices (relative to the tensor) of guard elements the kernel overwrote."""
        now = self.buffer.view(np.uint8).reshape(len(self.buffer), -1)
        before = self.guards.reshape(len(self.buffer), -1)
        bad = np.flatnonzero((now != before).any(axis=1)) - GUARD
        return [int(i) for i in bad if i < 0 or i >= self.array.size]


class EmulatedUpdateBackend(EmulatedCudaBackend):
    """The emulated CUDA backend (plans as generated kernels) plus update kernels, so a whole
    training step runs through generated CUDA source."""

    def __init__(self):
        self.launches = 0   # update kernel launches, for tests that count them

    def run_update(self, program, arrays: list[list], scalars: dict) -> None:
        """The CuPy backend's run_update, with host pointers: one launch for all tensors."""
        emulated = load(program.source)
        guarded = [[_Guarded(a) for a in table] for table in arrays]
        sizes = [a.size for a in arrays[0]]
        meta = program.pack([[g.inner.ctypes.data for g in table] for table in guarded], sizes)
        total = sum(sizes)
        emulated.launch(program.kernel, program.grid(total), program.block,
                        [meta, len(sizes), total, *program.scalar_args(scalars)])
        for role, table in zip(program.rule.roles, guarded):
            for k, g in enumerate(table):
                bad = g.changed_guards()
                if bad:
                    origin = kernel_origin(program.source, program.kernel)
                    raise KernelCheckError(
                        f"kernel {program.kernel} (from {origin}) wrote outside tensor {k} of role "
                        f"{role!r} ({g.array.size} elements), at relative indices {bad[:8]}",
                        program.kernel, origin)
                if role != "g":
                    g.array[...] = g.inner.reshape(g.array.shape)
        self.launches += 1
