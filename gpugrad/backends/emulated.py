"""Runs the generated CUDA kernels on the CPU, so CI (no GPU) tests their index math, snippet
math and two-stage reductions for real.

Each kernel is compiled as C++ with a small shim (blockIdx and friends as globals) and run
block by block with one thread per block: every line of generated code runs, except the
intra-block shared-memory tree, whose loop is empty with one thread."""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from gpugrad.backends.generated import GeneratedKernelBackend

SHIM = r"""
#include <cmath>
#include <cstring>
#include <algorithm>
using namespace std;
struct gg_dim3 { unsigned x; };
static gg_dim3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __restrict__
#define __shared__ static
#define __syncthreads()
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
static inline float rsqrt(float x) { return 1.0f / sqrt(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
extern "C" void gg_set_block(unsigned bx, unsigned grid) {
  blockIdx.x = bx; gridDim.x = grid; blockDim.x = 1; threadIdx.x = 0;
}
"""

_CACHE = Path(tempfile.gettempdir()) / "gpugrad_emulator"


def compiler_available() -> bool:
    return shutil.which("g++") is not None


def _build(source: str) -> ctypes.CDLL:
    _CACHE.mkdir(exist_ok=True)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    lib = _CACHE / f"k{digest}.so"
    if not lib.exists():
        src = _CACHE / f"k{digest}.cpp"
        src.write_text(SHIM + source)
        tmp = lib.with_suffix(".tmp.so")
        proc = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-w", "-o", str(tmp), str(src)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"g++ failed on generated kernel:\n{proc.stderr[:4000]}")
        tmp.rename(lib)
    return ctypes.CDLL(str(lib))


class EmulatedCudaBackend(GeneratedKernelBackend):
    name = "cuda-emulated"
    xp = np

    def device(self) -> str:
        return "CPU emulation of the generated CUDA kernels"

    def asarray(self, array, dtype):
        from gpugrad import dtypes
        return np.array(array, dtype=dtypes.NUMPY[dtype], copy=True, order="C")

    def compile(self, program) -> dict:
        lib = _build(program.source)
        set_block = lib.gg_set_block
        kernels = {}
        for launch in program.launches:
            fn = getattr(lib, launch.kernel)
            fn.restype = None

            def call(grid, block, args, fn=fn):
                ptrs = [ctypes.c_void_p(a.ctypes.data) for a in args]
                for b in range(grid):
                    set_block(b, grid)
                    fn(*ptrs)
            kernels[launch.kernel] = call
        return kernels

    def adopt(self, buf):
        return np.asarray(buf, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
