"""Runs the generated multi-tensor update kernels (gpugrad/optim_codegen.py) on the CPU.

A sibling of emulated.py, whose shim and build cache it reuses: the kernel is compiled as
C++ and run block by block with one thread per block. The kernel reads its tensors through a
table of pointers, which here are host addresses of numpy arrays, and takes scalars by value,
so its arguments are typed with ctypes rather than passed as arrays."""
from __future__ import annotations

import ctypes

from gpugrad.backends.emulated import EmulatedCudaBackend, _build

_SCALAR = {"float32": ctypes.c_float, "float64": ctypes.c_double}


class EmulatedUpdateBackend(EmulatedCudaBackend):
    """The emulated CUDA backend (plans as generated kernels) plus update kernels, so a whole
    training step runs through generated CUDA source."""

    def __init__(self):
        self.launches = 0   # update kernel launches, for tests that count them

    def run_update(self, program, arrays: list[list], scalars: dict) -> None:
        """The CuPy backend's run_update, with host pointers: one launch for all tensors."""
        lib = _build(program.source)
        fn = getattr(lib, program.kernel)
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong] + \
            [_SCALAR[program.dtype]] * len(program.rule.scalars)
        sizes = [a.size for a in arrays[0]]
        meta = program.pack([[a.ctypes.data for a in table] for table in arrays], sizes)
        total = sum(sizes)
        grid = program.grid(total)
        args = [float(v) for v in program.scalar_args(scalars)]
        for b in range(grid):
            lib.gg_set_block(b, grid)
            fn(meta.ctypes.data, len(sizes), total, *args)
        self.launches += 1
