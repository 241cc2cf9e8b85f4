"""Compiling generated CUDA: NVRTC straight to a cubin for the device's real architecture.

gpugrad compiles its kernels itself instead of through ``cupy.RawModule(code=...)`` for two
reasons. CuPy appends ``-ftz=true`` after the caller's options and NVRTC takes the last value
of a repeated option, so float32 subnormals would flush to zero on the GPU and not in numpy;
here the options are ours alone (``--ftz=false``). And compiling to a cubin runs ptxas, so
resource errors (more than 48 KiB of static shared memory, say) surface at compile time,
with their kernel's name, and ptxas's verbose report gives each kernel's registers, shared
bytes and stack. CI calls the same function with the same options for sm_90 and sm_80, so its
compile check is the GPU's compile.

Two ways to reach NVRTC behind one small interface: CuPy's own binding where CuPy is
installed (the library CuPy itself loads, so it matches the driver CuPy runs against), and
ctypes over ``libnvrtc`` otherwise (the ``nvidia-cuda-nvrtc`` wheel needs no GPU or driver).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
from dataclasses import dataclass
from pathlib import Path

# --ptxas-options=-v only adds ptxas's resource report to the log; it changes no code.
OPTIONS = ("--std=c++14", "--ftz=false", "--prec-div=true", "--prec-sqrt=true",
           "--ptxas-options=-v")

STATIC_SHARED_LIMIT = 48 * 1024   # bytes of __shared__ a block may declare statically

_ORIGIN = re.compile(r"//\s*(kernels/\S+\.cu)")


class KernelCompileError(RuntimeError):
    """A generated kernel failed to compile or exceeds a resource limit of its architecture."""


@dataclass(frozen=True)
class KernelResources:
    """ptxas's report of one kernel entry."""
    kernel: str
    arch: str
    registers: int
    shared_bytes: int
    stack_bytes: int
    spill_bytes: int

    def __str__(self) -> str:
        spill = f", {self.spill_bytes} B spilled" if self.spill_bytes else ""
        return (f"{self.kernel} ({self.arch}): {self.registers} registers, "
                f"{self.shared_bytes} B shared, {self.stack_bytes} B stack{spill}")


@dataclass(frozen=True)
class Compiled:
    binary: bytes                      # cubin for sm_XX, PTX text for compute_XX
    log: str
    resources: dict                    # kernel name -> KernelResources (cubins only)


# --- the two bindings -------------------------------------------------------------------------


class _CtypesNvrtc:
    def __init__(self, lib):
        self.lib = lib

    def version(self) -> tuple[int, int]:
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
        return major.value, minor.value

    def compile(self, source: str, name: str, options: tuple, cubin: bool) -> tuple[bool, str, bytes]:
        lib = self.lib
        prog = ctypes.c_void_p()
        rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
        if rc:
            raise KernelCompileError(f"nvrtcCreateProgram failed with status {rc} for {name}")
        try:
            opts = [o.encode() for o in options]
            rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            text = log.value.decode(errors="replace")
            if rc:
                return False, text, b""
            get_size, get = ((lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN) if cubin
                             else (lib.nvrtcGetPTXSize, lib.nvrtcGetPTX))
            get_size(prog, ctypes.byref(size))
            out = ctypes.create_string_buffer(size.value)
            get(prog, out)
            return True, text, out.raw[: size.value]
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))


class _CupyNvrtc:
    def __init__(self, module):
        self.nvrtc = module

    def version(self) -> tuple[int, int]:
        return tuple(self.nvrtc.getVersion())

    def compile(self, source: str, name: str, options: tuple, cubin: bool) -> tuple[bool, str, bytes]:
        nvrtc = self.nvrtc
        prog = nvrtc.createProgram(source, name, (), ())
        try:
            try:
                nvrtc.compileProgram(prog, options)
            except nvrtc.NVRTCError:
                return False, nvrtc.getProgramLog(prog), b""
            binary = nvrtc.getCUBIN(prog) if cubin else nvrtc.getPTX(prog)
            return True, nvrtc.getProgramLog(prog), binary
        finally:
            nvrtc.destroyProgram(prog)


def _library_candidates() -> list[str]:
    out = []
    try:
        import nvidia.cuda_nvrtc as wheel  # the nvidia-cuda-nvrtc-cu12 wheel
        for root in wheel.__path__:
            out += sorted(str(p) for p in Path(root, "lib").glob("libnvrtc.so*") if ".alt." not in p.name)
    except ImportError:
        pass
    try:
        import nvidia.cu13 as wheel13  # the CUDA 13 wheels keep every library in one folder
        for root in wheel13.__path__:
            out += sorted(str(p) for p in Path(root, "lib").glob("libnvrtc.so*") if ".alt." not in p.name)
    except ImportError:
        pass
    found = ctypes.util.find_library("nvrtc")
    if found:
        out.append(found)
    return out


@functools.lru_cache(maxsize=None)
def binding(prefer_cupy: bool = True):
    """An NVRTC binding, or None where no NVRTC is installed."""
    if prefer_cupy:
        try:
            from cupy_backends.cuda.libs import nvrtc as cupy_nvrtc
            cupy_nvrtc.getVersion()
            if hasattr(cupy_nvrtc, "getCUBIN"):   # older CuPy binds only getPTX
                return _CupyNvrtc(cupy_nvrtc)
        except Exception:  # CuPy absent, or present without a usable NVRTC: try ctypes
            pass
    for path in _library_candidates():
        try:
            return _CtypesNvrtc(ctypes.CDLL(path))
        except OSError:
            continue
    return None


def available() -> bool:
    return binding() is not None


def version() -> str:
    api = binding()
    return "not found" if api is None else ".".join(map(str, api.version()))


# --- compiling --------------------------------------------------------------------------------


def origins(source: str) -> list[str]:
    """The snippet and template files a generated source was composed from."""
    return sorted(set(_ORIGIN.findall(source)))


def compile_source(source: str, arch: str = "sm_90", name: str = "gpugrad_kernel.cu",
                   options: tuple = OPTIONS, api=None) -> Compiled:
    """NVRTC over one source: a cubin for ``sm_XX``, PTX for ``compute_XX``. Raises
    KernelCompileError naming the source's kernels and the files they came from."""
    api = api or binding()
    if api is None:
        raise KernelCompileError(
            "NVRTC was not found: install CuPy with its CUDA toolkit extra "
            "(pip install \"cupy-cuda12x[ctk]\") or the nvidia-cuda-nvrtc-cu12 wheel.")
    cubin = arch.startswith("sm_")
    opts = tuple(options) + (f"--gpu-architecture={arch}",)
    if not cubin:
        opts = tuple(o for o in opts if not o.startswith("--ptxas-options"))
    ok, log, binary = api.compile(source, name, opts, cubin)
    if not ok or _ptxas_failed(log):
        kernels = ", ".join(re.findall(r'__global__ void (?:__launch_bounds__\(\d+\) )?(\w+)', source))
        # NVRTC drops ptxas's error text for resource overflows but keeps its report: say it.
        limits = "".join(
            f"\nresource limit: {r.kernel} uses {r.shared_bytes} bytes of static shared memory, "
            f"over the {STATIC_SHARED_LIMIT} a block may declare"
            for r in parse_resources(log, arch).values() if r.shared_bytes > STATIC_SHARED_LIMIT)
        raise KernelCompileError(
            f"Generated kernel {kernels or name} failed to compile for {arch}. It is built from "
            f"{', '.join(origins(source)) or 'kernels/templates'}.{limits}\n"
            f"Compiler log:\n{log.strip()[:4000]}")
    return Compiled(binary, log, parse_resources(log, arch) if cubin else {})


def _ptxas_failed(log: str) -> bool:
    return bool(re.search(r"ptxas (fatal|error)", log))


_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(\w+)'")
_USED = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")
_STACK = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_resources(log: str, arch: str) -> dict:
    """{kernel: KernelResources} from ptxas's verbose report in an NVRTC log."""
    out, current, stack, spill = {}, None, 0, 0
    for line in log.splitlines():
        m = _ENTRY.search(line)
        if m:
            current, stack, spill = demangle(m.group(1)), 0, 0
            continue
        m = _STACK.search(line)
        if m and current:
            stack, spill = int(m.group(1)), int(m.group(2)) + int(m.group(3))
            continue
        m = _USED.search(line)
        if m and current:
            out[current] = KernelResources(current, arch, int(m.group(1)), int(m.group(2) or 0), stack, spill)
            current = None
    return out


def demangle(symbol: str) -> str:
    """'ns::name' for the Itanium-mangled ``_ZN2ns4nameE...`` of a kernel in a namespace (the
    batched compile check puts each source in one); other names are returned as they are."""
    if not symbol.startswith("_ZN"):
        return symbol
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        j = i
        while symbol[j].isdigit():
            j += 1
        n = int(symbol[i:j])
        parts.append(symbol[j:j + n])
        i = j + n
    return "::".join(parts) or symbol
