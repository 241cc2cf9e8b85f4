"""The CuPy backend: tensors in device memory; each plan group runs as its generated kernel
(compiled by gpugrad.compile.nvrtc to a cubin for the device's architecture, cached on disk, loaded
with cupy.RawModule and launched as a RawKernel, the cheapest launch path from Python);
matmuls go to cuBLAS through cupy.matmul."""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from gpugrad.core import dtypes
from gpugrad.compile import nvrtc
from gpugrad.core.caches import LRU
from gpugrad.compile.nvrtc import KernelCompileError
from gpugrad.backends.generated import GeneratedKernelBackend

__all__ = ["CupyBackend", "KernelCompileError", "cupy_unavailable_reason", "kernel_cache_dir"]


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


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def kernel_cache_dir() -> Path:
    """Where compiled cubins are kept: $GPUGRAD_CACHE_DIR, else ~/.cache/gpugrad/kernels,
    else (read-only home) a folder under the temp dir."""
    env = os.environ.get("GPUGRAD_CACHE_DIR")
    if env:
        return Path(env)
    home = Path(os.path.expanduser("~/.cache/gpugrad/kernels"))
    return home if _writable(home) else Path(tempfile.gettempdir()) / "gpugrad-kernels"


def _usable_cupy_cache_dir() -> None:
    """CuPy still compiles its own kernels (reductions inside cupy.matmul's helpers, say)
    under ~/.cupy; where home is read-only, point it at a temp dir."""
    if "CUPY_CACHE_DIR" not in os.environ and not _writable(Path(os.path.expanduser("~/.cupy"))):
        os.environ["CUPY_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), "gpugrad-cupy-cache")


class CupyBackend(GeneratedKernelBackend):
    name = "cupy"

    def __init__(self):
        _usable_cupy_cache_dir()
        import cupy
        self.cupy = cupy
        self.xp = cupy
        self.array_type = cupy.ndarray
        self.dims_as_tuples = True
        self._modules = LRU("cupy modules", 4096)   # source -> {kernel: RawKernel}, across plans
        self._lock = threading.Lock()
        self.arch = f"sm_{cupy.cuda.Device().compute_capability}"   # e.g. sm_90 on an H100/H200
        self.resources: dict[str, object] = {}  # kernel name -> nvrtc.KernelResources

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
                functions = self._functions(program)
                self._modules.put(program.source, functions)
        return dict(functions)   # RawKernels, called (grid,), (block,), args: dims_as_tuples

    def run_update(self, program, arrays: list, scalars: dict) -> None:
        """One launch of a generated multi-tensor update kernel (gpugrad/compile/optim_codegen.py):
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
        kernel((program.grid(total),), (program.block,),
               (cached[1], np.int32(len(sizes)), np.int64(total), *program.scalar_args(scalars)))

    def _functions(self, program) -> dict:
        """{kernel name: RawKernel}: the cubin from the disk cache, or compiled now."""
        path, log = self._cubin(program.source)
        self.resources.update(nvrtc.parse_resources(log, self.arch))
        module = self.cupy.RawModule(path=str(path))
        return {launch.kernel: module.get_function(launch.kernel) for launch in program.launches}

    def _cubin(self, source: str) -> tuple[Path, str]:
        """(path of the cubin, compile log). Keyed by everything that changes the binary:
        the source, the options, the architecture and NVRTC's version."""
        key = hashlib.sha256("\0".join((source, *nvrtc.OPTIONS, self.arch, nvrtc.version()))
                             .encode()).hexdigest()[:32]
        folder = kernel_cache_dir()
        path, log_path = folder / f"{key}.{self.arch}.cubin", folder / f"{key}.{self.arch}.log"
        if path.exists() and log_path.exists():
            return path, log_path.read_text()
        compiled = nvrtc.compile_source(source, self.arch)
        folder.mkdir(parents=True, exist_ok=True)
        # write then rename: another process may be loading the same cubin
        for target, data in ((log_path, compiled.log.encode()), (path, compiled.binary)):
            tmp = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return path, compiled.log


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def pool_peak(fn) -> tuple[int, int]:
    """(bytes the default CuPy pool holds in use before fn, the most it holds while fn runs
    and the device finishes its work): fn runs under a tracking allocator, restored after."""
    import cupy
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    before = pool.used_bytes()
    peak = [before]

    def tracking_malloc(size):
        mem = pool.malloc(size)
        peak[0] = max(peak[0], pool.used_bytes())
        return mem

    cupy.cuda.set_allocator(tracking_malloc)
    try:
        fn()
        cupy.cuda.Device().synchronize()
    finally:
        cupy.cuda.set_allocator(pool.malloc)
    return before, peak[0]

