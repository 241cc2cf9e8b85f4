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
