"""The CuPy backend: tensors in device memory; each plan group runs as its generated kernel
(compiled once with NVRTC through cupy.RawModule, launched as a RawKernel, the cheapest
launch path from Python); matmuls go to cuBLAS through cupy.matmul."""
from __future__ import annotations

import os
import tempfile
import threading

from .. import dtypes
from .generated import GeneratedKernelBackend


def cupy_unavailable_reason() -> str:
    """Why CuPy cannot run here, or '' when it can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if not cupy.cuda.is_available():
            return "CuPy is installed but no CUDA GPU or driver is usable"
    except Exception as exc:  # a broken driver install raises from is_available
        return f"CuPy cannot reach a CUDA GPU ({exc})"
    return ""


def _usable_cache_dir() -> None:
    """CuPy caches compiled kernels under ~/.cupy; where home is read-only, use a temp dir."""
    if "CUPY_CACHE_DIR" in os.environ:
        return
    home = os.path.expanduser("~/.cupy")
    try:
        os.makedirs(home, exist_ok=True)
        probe = os.path.join(home, ".gpugrad_write_probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError:
        os.environ["CUPY_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), "gpugrad-cupy-cache")


class KernelCompileError(RuntimeError):
    pass


class CupyBackend(GeneratedKernelBackend):
    name = "cupy"

    def __init__(self):
        _usable_cache_dir()
        import cupy
        self.cupy = cupy
        self.xp = cupy
        self._modules: dict[str, object] = {}   # source -> RawModule, across plans
        self._lock = threading.Lock()

    def device(self) -> str:
        cupy = self.cupy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"GPU {dev.id}: {name}, CuPy {cupy.__version__}"

    def asarray(self, array, dtype: str):
        cupy = self.cupy
        target = dtypes.NUMPY[dtype]
        if isinstance(array, cupy.ndarray):
            out = array
        elif hasattr(array, "__cuda_array_interface__"):
            out = cupy.asarray(array)
        elif hasattr(array, "__dlpack__") and hasattr(array, "__dlpack_device__") \
                and array.__dlpack_device__()[0] == 2:  # kDLCUDA: already on the device
            out = cupy.from_dlpack(array)
        else:
            return cupy.array(array, dtype=target, order="C")
        if out.dtype != target or not out.flags.c_contiguous:
            out = cupy.array(out, dtype=target, order="C")  # ascontiguousarray would make 0-d 1-d
        return out

    def adopt(self, buf):
        if isinstance(buf, self.cupy.ndarray):
            return buf
        return self.cupy.asarray(buf)

    def empty(self, shape, dtype: str):
        try:
            return self.cupy.empty(shape, dtype=dtypes.NUMPY[dtype])
        except self.cupy.cuda.memory.OutOfMemoryError as exc:
            pool = self.cupy.get_default_memory_pool()
            raise MemoryError(
                f"Out of GPU memory allocating {dtype}{list(shape)} "
                f"({self.cupy.dtype(dtypes.NUMPY[dtype]).itemsize * _prod(shape)} bytes); the "
                f"memory pool holds {pool.used_bytes()} bytes in use and {pool.total_bytes()} in "
                "total. Free tensors you no longer need (or call "
                "cupy.get_default_memory_pool().free_all_blocks()).") from exc

    def compile(self, program) -> dict:
        with self._lock:
            functions = self._modules.get(program.source)
            if functions is None:
                functions = self._modules[program.source] = self._functions(program)
        return {name: (lambda grid, block, args, fn=fn: fn((grid,), (block,), args))
                for name, fn in functions.items()}

    def run_update(self, program, arrays: list, scalars: dict) -> None:
        """One launch of a generated multi-tensor update kernel (gpugrad/optim_codegen.py):
        arrays holds one list of device arrays per role of program.rule (w, g, each state),
        all contiguous and of program.dtype; w and the states are updated in place."""
        import numpy as np
        kernel = program.cache.get("cupy")
        if kernel is None:
            kernel = program.cache["cupy"] = self.compile(program)[program.kernel]
        sizes = [a.size for a in arrays[0]]
        addresses = [[a.data.ptr for a in table] for table in arrays]
        key = (tuple(sizes), tuple(map(tuple, addresses)))
        cached = program.cache.get("meta")
        if cached is None or cached[0] != key:
            # The pointer tables go up once and are reused while no buffer moves (the memory
            # pool often gives a step's gradients the addresses the last step's had).
            cached = program.cache["meta"] = (key, self.cupy.asarray(program.pack(addresses, sizes)))
        total = sum(sizes)
        kernel(program.grid(total), program.block,
               (cached[1], np.int32(len(sizes)), np.int64(total), *program.scalar_args(scalars)))

    def _functions(self, program) -> dict:
        """{kernel name: RawKernel}; RawModule compiles at the first get_function."""
        cupy = self.cupy
        try:
            module = cupy.RawModule(code=program.source, options=("--std=c++14",))
            return {launch.kernel: module.get_function(launch.kernel) for launch in program.launches}
        except cupy.cuda.compiler.CompileException as exc:
            origins = sorted({ln.strip()[3:] for ln in program.source.splitlines()
                              if ln.strip().startswith("// kernels/")})
            names = ", ".join(launch.kernel for launch in program.launches)
            raise KernelCompileError(
                f"Generated kernel {names} failed to compile. It is built from "
                f"{', '.join(origins) or 'the kernels/templates'} and kernels/templates/. "
                f"Compiler log:\n{exc}") from exc


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
