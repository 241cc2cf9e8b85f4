"""Compile generated kernels with nvcc without a GPU (CI's check that every snippet and
template makes valid CUDA for sm_90), naming the snippet files behind any error."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

_ORIGIN = re.compile(r"//\s*(kernels/\S+\.cu)")


def nvcc_path() -> str | None:
    return shutil.which("nvcc")


def programs_of(plans: Iterable) -> dict[str, str]:
    """Unique generated sources of the plans' kernel groups, by a readable name."""
    out: dict[str, str] = {}
    seen = set()
    for plan in plans:
        for g in plan.groups:
            if g.kind == "matmul":
                continue
            src = g.source
            if src not in seen:
                seen.add(src)
                out[f"k{len(out)}_{g.name}"] = src
    return out


def _unit(sources: dict[str, str]) -> tuple[str, list[tuple[int, str, list[str]]]]:
    """One translation unit: each source in a namespace of its own (so helper templates and
    kernel names may repeat), with a line map back to the source and its snippet origins."""
    lines, spans = [], []
    for name, src in sources.items():
        body = src.replace('extern "C" ', "")
        start = len(lines) + 1
        lines.append(f"namespace {name} {{")
        lines.extend(body.splitlines())
        lines.append("}")
        spans.append((start, name, body.splitlines()))
    return "\n".join(lines) + "\n", spans


def _origin(spans, line: int) -> str:
    for start, name, body in reversed(spans):
        if line >= start:
            local = line - start - 1
            origin = "kernels/templates (generated code)"
            for text in body[: local + 1]:
                m = _ORIGIN.search(text)
                if m:
                    origin = m.group(1)
                if "__global__" in text:
                    origin = "kernels/templates (generated code)"
            hit = body[local] if 0 <= local < len(body) else ""
            m = _ORIGIN.search(body[local - 1]) if local >= 1 else None
            if m and "gg_" in hit:
                origin = m.group(1)
            return f"{name} line {local + 1} ({origin})"
    return "?"


def compile_all(sources: dict[str, str], arch: str = "sm_90", nvcc: str | None = None) -> list[str]:
    """Compile every source with one nvcc call; returns the error lines, each naming its
    kernel and the snippet file or template it came from (empty when all compile)."""
    nvcc = nvcc or nvcc_path()
    if not nvcc:
        raise FileNotFoundError("nvcc is not on PATH")
    if not sources:
        return []
    unit, spans = _unit(sources)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gpugrad_kernels.cu"
        path.write_text(unit)
        proc = subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-o", str(Path(tmp) / "out.ptx"), str(path)],
                              capture_output=True, text=True)
    if proc.returncode == 0:
        return []
    errors = []
    for ln in (proc.stderr + proc.stdout).splitlines():
        m = re.search(r"gpugrad_kernels\.cu\((\d+)\): (error.*)", ln)
        if m:
            errors.append(f"{_origin(spans, int(m.group(1)))}: {m.group(2)}")
    return errors or [proc.stderr.strip() or "nvcc failed"]


def _load_nvrtc():
    """libnvrtc from the nvidia-cuda-nvrtc wheel (no GPU or driver needed), or the system's."""
    import ctypes
    import ctypes.util
    candidates = []
    try:
        import nvidia.cuda_nvrtc as wheel
        for root in wheel.__path__:
            candidates += sorted(str(p) for p in Path(root, "lib").glob("libnvrtc.so*") if ".alt." not in p.name)
    except ImportError:
        pass
    found = ctypes.util.find_library("nvrtc")
    if found:
        candidates.append(found)
    for path in candidates:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def nvrtc_available() -> bool:
    return _load_nvrtc() is not None


def nvrtc_compile_all(sources: dict[str, str], arch: str = "compute_90") -> list[str]:
    """Compile each source with NVRTC, as CuPy's RawModule does at run time (NVRTC has no
    system headers, so this catches what nvcc alone would let through)."""
    import ctypes
    lib = _load_nvrtc()
    if lib is None:
        raise FileNotFoundError("libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12)")
    errors = []
    opts = [f"-arch={arch}".encode(), b"--std=c++14"]
    opt_array = (ctypes.c_char_p * len(opts))(*opts)
    for name, src in sources.items():
        prog = ctypes.c_void_p()
        rc = lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), f"{name}.cu".encode(), 0, None, None)
        if rc:
            errors.append(f"{name}: nvrtcCreateProgram failed ({rc})")
            continue
        rc = lib.nvrtcCompileProgram(prog, len(opts), opt_array)
        if rc:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            origins = sorted(set(_ORIGIN.findall(src)))
            errors.append(f"{name} (from {', '.join(origins) or 'kernels/templates'}): "
                          f"{log.value.decode(errors='replace').strip()[:2000]}")
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return errors
