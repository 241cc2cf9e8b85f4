"""CI's check of the generated kernels without a GPU: every source compiles to a cubin for
sm_90 and sm_80 the way the CuPy backend compiles it, naming the snippet files behind any
error."""
from __future__ import annotations

import re
from typing import Iterable

from gpugrad.compile import nvrtc

_ORIGIN = re.compile(r"//\s*(kernels/\S+\.cu)")


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
    """'kernel line N (file)': the file is the nearest marker comment above the line (every
    snippet's device function and every template is headed by one)."""
    for start, name, body in reversed(spans):
        if line >= start:
            local = line - start - 1
            origin = "generated code"
            for text in body[: local + 1]:
                m = _ORIGIN.search(text)
                if m:
                    origin = m.group(1)
            return f"{name} line {local + 1} ({origin})"
    return "?"


ARCHS = ("sm_90", "sm_80")


def compile_all(sources: dict[str, str], archs: Iterable[str] = ARCHS) -> list[str]:
    """Compile every source to a cubin for each architecture, exactly as the CuPy backend
    compiles them (gpugrad.compile.nvrtc.compile_source, same options), so ptxas runs and resource
    limits fail here. All sources go into one NVRTC program per architecture (each in a
    namespace of its own) because one compiler call over many kernels is what keeps CI fast.
    Returns the error lines, each naming its kernel and the snippet files or templates it came
    from (empty when all compile)."""
    if not sources:
        return []
    unit, spans = _unit(sources)
    errors: list[str] = []
    for arch in archs:
        try:
            nvrtc.compile_source(unit, arch, name="gpugrad_kernels.cu")
        except nvrtc.KernelCompileError as exc:
            errors += [f"{arch}: {e}" for e in _explain_log(str(exc), spans, sources)]
    return errors


def _explain_log(log: str, spans, sources: dict[str, str]) -> list[str]:
    """Compiler errors mapped back to the kernel and the files each came from."""
    errors = []
    for ln in log.splitlines():
        m = re.search(r"gpugrad_kernels\.cu\((\d+)\): (error.*)", ln)
        if m:
            errors.append(f"{_origin(spans, int(m.group(1)))}: {m.group(2)}")
            continue
        m = (re.search(r"ptxas (?:error|fatal)\s*: Entry function '(\w+)' (.*)", ln)
             or re.search(r"^resource limit: (\S+) (.*)", ln))
        if m:
            name = nvrtc.demangle(m.group(1))
            unit = name.split("::")[0]
            files = ", ".join(nvrtc.origins(sources.get(unit, ""))) or "kernels/templates"
            errors.append(f"{name} (from {files}): {m.group(2)}")
    return errors or [log.strip()[:2000] or "NVRTC failed"]


def nvrtc_available() -> bool:
    return nvrtc.available()


def resources_all(sources: dict[str, str], arch: str = "sm_90") -> dict:
    """{'unit::kernel': KernelResources} for every kernel of the sources, in one compile."""
    unit, _ = _unit(sources)
    return nvrtc.compile_source(unit, arch, name="gpugrad_kernels.cu").resources
