"""Runs the generated CUDA kernels on the CPU, faithfully and checked, so CI (no GPU) tests
their index math, snippet math, shared-memory trees and two-stage reductions for real.

Each program's source is compiled as C++ against a small shim (emulator_shim.h) and linked to
the emulator runtime (emulator_runtime.cpp, built once). Every block runs its real blockDim
threads as fibers on one OS thread, deterministically; ``__syncthreads()`` switches fibers until
all threads of the block reach it. Before compiling, the source is rewritten so that accesses
can be checked: ``__shared__ T name[N];`` becomes a checked array, and pointer parameters
that are only ever indexed become pointers that know their extent. ``name[i]`` becomes
``name(__LINE__)[i]``, so a violation names the line. The runtime reports shared-memory
races, reads of unwritten shared memory, lost shared writes, divergent barriers, out-of-range
indices and output elements written twice or never; any of them raises KernelCheckError,
naming the kernel, the template it came from, the array, the index, the threads and the block.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core.snippets import kernels_dir
from gpugrad.backends.generated import GeneratedKernelBackend

_HERE = Path(__file__).resolve().parent
_SHIM = _HERE / "emulator_shim.h"
_RUNTIME = _HERE / "emulator_runtime.cpp"
_CACHE = Path(tempfile.gettempdir()) / "gpugrad_emulator"

_KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?'
                     r'(\w+)\s*\(([^)]*)\)\s*\{')
_SHARED = re.compile(r'__shared__\s+([A-Za-z_][\w\s:]*?)\s+(\w+)\s*\[([^\]]+)\]\s*;')
_TEMPLATE_MARK = re.compile(r"//.*?(kernels/templates/[\w.-]+\.cu)")
_ANY_MARK = re.compile(r"//\s*(kernels/[\w./-]+\.cu)")


class KernelCheckError(RuntimeError):
    """A generated kernel did something that is wrong on a GPU (see the module docstring)."""

    def __init__(self, message: str, kernel: str, origin: str):
        super().__init__(message)
        self.kernel, self.origin = kernel, origin


def compiler_available() -> bool:
    return shutil.which("g++") is not None


class _Param:
    __slots__ = ("name", "ctype", "kind")   # kind: 'checked', 'pointer' or 'scalar'

    def __init__(self, name: str, ctype: str, kind: str):
        self.name, self.ctype, self.kind = name, ctype, kind


def _split_params(text: str, body: str) -> tuple[list[_Param], str]:
    """The parameters of a kernel, and their text with indexed pointers made checked (line
    breaks kept, so that __LINE__ stays the generated source's line)."""
    params, pieces = [], []
    code = re.sub(r"//[^\n]*", "", body)
    for piece in text.split(","):
        core = piece.strip()
        if not core:
            pieces.append(piece)
            continue
        m = re.fullmatch(r"(.*?)\b(\w+)", core, re.S)
        ctype, name = re.sub(r"\b__restrict__\b", "", m.group(1)).strip(), m.group(2)
        if not ctype.endswith("*"):
            params.append(_Param(name, re.sub(r"^const\s+", "", ctype), "scalar"))
        elif all(code[u.end():].lstrip().startswith("[") for u in re.finditer(rf"\b{name}\b", code)):
            # Only ever indexed: a wrapper that knows the extent can check every index. (A
            # pointer used otherwise, e.g. cast to a table of pointers, stays a raw pointer.)
            base = ctype[:-1].strip()
            params.append(_Param(name, base, "checked"))
            piece = piece.replace(core, f"gg_gptr<{base}> {name}")
        else:
            params.append(_Param(name, ctype, "pointer"))
        pieces.append(piece)
    return params, ",".join(pieces)


def _instrument(source: str) -> tuple[str, dict]:
    """(source with checked shared arrays and parameters, {kernel: [_Param]})."""
    matches = list(_KERNEL.finditer(source))
    out, kernels, pos = [], {}, 0
    for k, m in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(source)
        body = source[m.end():end]
        params, params_text = _split_params(m.group(2), body)
        kernels[m.group(1)] = params
        shared = [d.group(2) for d in _SHARED.finditer(body)]
        body = _SHARED.sub(lambda d: f'static gg_shared<{d.group(1)}, ({d.group(3)})> {d.group(2)}("{d.group(2)}");',
                           body)
        for name in shared + [p.name for p in params if p.kind == "checked"]:
            body = re.sub(rf"\b{name}(\s*)\[", rf"{name}(__LINE__)\1[", body)
        out += [source[pos:m.start(2)], params_text, source[m.end(2):m.end()], body]
        pos = end
    out.append(source[pos:])
    text = "".join(out)
    leftover = re.search(r"^(?:(?!//).)*__shared__.*$", text, re.M)   # outside comments
    if leftover:
        raise NotImplementedError(f"the emulator checks only `__shared__ TYPE NAME[N];` declarations "
                                  f"inside kernels, not: {leftover.group(0).strip()}")
    return text, kernels


def _launcher(kernel: str, params: list[_Param]) -> str:
    """An extern "C" entry gg_launch_<kernel>(argv, extents, grid, block) for ctypes."""
    decls, args = [], []
    for i, p in enumerate(params):
        a = f"gg_a{i}"
        if p.kind == "checked":
            writable = 0 if p.ctype.startswith("const") else 1
            decls.append(f"  gg_gptr<{p.ctype}> {a} = {{({p.ctype}*)gg_argv[{i}], gg_ext[{i}], "
                         f'gg_global_param("{p.name}", gg_ext[{i}], {writable})}};')
        elif p.kind == "pointer":
            decls.append(f"  {p.ctype} {a} = ({p.ctype})gg_argv[{i}];")
        else:
            decls.append(f"  {p.ctype} {a} = gg_arg<{p.ctype}>(gg_argv[{i}]);")
        args.append(a)
    return (f'\nextern "C" int gg_launch_{kernel}(void* const* gg_argv, const long long* gg_ext, '
            f"unsigned gg_grid, unsigned gg_block) {{\n" + "\n".join(decls) +
            f"\n  auto gg_body = [&]() {{ {kernel}({', '.join(args)}); }};\n"
            f"  return gg_run(gg_grid, gg_block, [](void* f) {{ (*(decltype(gg_body)*)f)(); }}, &gg_body);\n}}\n")


def _gxx(args: list[str], what: str) -> None:
    proc = subprocess.run(["g++", *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"g++ failed on {what}:\n{proc.stderr[:4000]}")


def _cached(name: str, text: str, flags: list[str], what: str, libs: tuple = ()) -> Path:
    """Compile text into _CACHE/name once (atomically, as tests may run in parallel)."""
    lib = _CACHE / name
    if not lib.exists():
        _CACHE.mkdir(exist_ok=True)
        src = lib.with_suffix(f".{os.getpid()}.cpp")
        src.write_text(text)
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        _gxx([*flags, "-shared", "-fPIC", f"-I{_HERE}", "-o", str(tmp), str(src), *libs], what)
        tmp.rename(lib)
        src.unlink()
    return lib


_runtime_path = None


def _runtime() -> Path:
    global _runtime_path
    if _runtime_path is None:
        text = _RUNTIME.read_text()
        digest = hashlib.sha256((_SHIM.read_text() + text).encode()).hexdigest()[:16]
        name = f"rt{digest}.so"
        _runtime_path = _cached(name, text, ["-O2", f"-Wl,-soname,{name}"], "the emulator runtime")
    return _runtime_path


def kernel_origin(source: str, kernel: str) -> str:
    """The template a kernel came from: the nearest `// kernels/templates/X.cu` marker before
    its definition, or the nearest line that is a template's first (comment) line."""
    firsts = {}
    for path in sorted((kernels_dir() / "templates").glob("*.cu")):
        text = path.read_text()
        lines = text.splitlines()
        if "__global__" in text and lines and lines[0].strip():   # a kernel's template
            firsts[lines[0].strip()] = f"kernels/templates/{path.name}"
    m = re.search(rf"\b{re.escape(kernel)}\s*\(", source)
    before = source[:m.start() if m else len(source)].splitlines()
    for line in reversed(before):
        mark = _TEMPLATE_MARK.search(line)
        if mark:
            return mark.group(1)
        if line.strip() in firsts:
            return firsts[line.strip()]
    for line in reversed(before):
        mark = _ANY_MARK.search(line)
        if mark:
            return mark.group(1)
    return "unknown template"


class _Scalar(ctypes.Structure):
    _fields_ = [("f", ctypes.c_double), ("i", ctypes.c_longlong)]   # gg_scalar


class EmulatedProgram:
    """One compiled source: launch(kernel, grid, block, args) runs a kernel, checked."""

    _lock = threading.Lock()   # the runtime's state is process-wide

    def __init__(self, source: str):
        self.source = source
        text, self.params = _instrument(source)
        text = ('#include "emulator_shim.h"\n#line 1\n' + text +
                "".join(_launcher(k, ps) for k, ps in self.params.items()))
        runtime = _runtime()
        digest = hashlib.sha256((runtime.name + text).encode()).hexdigest()[:20]
        path = _cached(f"k{digest}.so", text,
                       ["-O1", "-w", f"-Wl,-rpath,{runtime.parent}"], "generated kernel", (str(runtime),))
        self.lib = ctypes.CDLL(str(path))
        self.lib.gg_messages.restype = ctypes.c_char_p

    def launch(self, kernel: str, grid: int, block: int, args) -> None:
        """Run kernel over grid blocks of block threads. args: one per parameter, numpy arrays
        for pointers (the data address; the size is the extent), numbers for scalars."""
        params = self.params[kernel]
        if len(args) != len(params):
            raise TypeError(f"{kernel} takes {len(params)} arguments, got {len(args)}")
        keep, argv, ext = [], (ctypes.c_void_p * len(params))(), (ctypes.c_longlong * len(params))()
        for k, (p, a) in enumerate(zip(params, args)):
            if p.kind == "scalar":
                s = _Scalar(float(a), int(a) if float(a).is_integer() else 0)
                keep.append(s)
                argv[k] = ctypes.addressof(s)
            else:
                argv[k], ext[k] = a.ctypes.data, a.size
        fn = getattr(self.lib, f"gg_launch_{kernel}")
        fn.restype = ctypes.c_int
        with self._lock:
            count = fn(argv, ext, ctypes.c_uint(grid), ctypes.c_uint(block))
            messages = self.lib.gg_messages().decode() if count else ""
        if count:
            raise self.error(kernel, grid, block, count, messages.splitlines())

    def error(self, kernel: str, grid: int, block: int, count: int, messages: list) -> KernelCheckError:
        origin = kernel_origin(self.source, kernel)
        lines = self.source.splitlines()
        cited = sorted({int(n) for msg in messages for n in re.findall(r"\bline (\d+)", msg)})
        text = [f"kernel {kernel} (from {origin}), launched as {grid} blocks of {block} threads: "
                f"{count} violation{'s' if count > 1 else ''}"]
        text += [f"  - {msg}" for msg in messages]
        if count > len(messages):
            text.append(f"  ... {count - len(messages)} more (or repeats)")
        if cited:
            text.append("  generated source:")
            text += [f"  {n:>5}: {lines[n - 1].strip()}" for n in cited if 0 < n <= len(lines)]
        return KernelCheckError("\n".join(text), kernel, origin)


_programs: dict = {}


def load(source: str) -> EmulatedProgram:
    program = _programs.get(source)
    if program is None:
        program = _programs[source] = EmulatedProgram(source)
    return program


def _build(source: str) -> ctypes.CDLL:
    """The compiled library of a source. Its kernels can also be called directly, one thread
    per block after gg_set_block(block, grid), unchecked (direct calls predate the launcher)."""
    return load(source).lib


class EmulatedCudaBackend(GeneratedKernelBackend):
    name = "cuda-emulated"
    xp = np

    def device(self) -> str:
        return "CPU emulation of the generated CUDA kernels (every thread, checked)"

    def asarray(self, array, dtype):
        return np.array(array, dtype=dtypes.NUMPY[dtype], copy=True, order="C")

    def compile(self, program) -> dict:
        emulated = load(program.source)
        return {launch.kernel: (lambda grid, block, args, k=launch.kernel: emulated.launch(k, grid, block, args))
                for launch in program.launches}

    def adopt(self, buf):
        return np.asarray(buf, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
