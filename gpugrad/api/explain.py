"""explain(): the plan variable_grads would run, readable by a person."""
from __future__ import annotations

from typing import Callable, Sequence

from gpugrad.compile import nvrtc
from gpugrad.api.autodiff import plan_variable_grads
from gpugrad.backends import current


def _slot_name(plan, slot: int, names: dict) -> str:
    if slot in names:
        return names[slot]
    shape, dtype = plan.slot_specs[slot]
    kind = "input" if slot < plan.n_inputs else "tmp"
    return f"{kind}{slot}:{dtype}{list(shape)}"


def format_plan(plan, names: dict | None = None, source: bool = True) -> str:
    names = names or {}
    lines = [f"Plan: {len(plan.groups)} kernel group(s), {plan.n_inputs} input buffer(s)"]
    for g in plan.groups:
        ops = sorted({i.op for i in g.instrs if i.op not in ("load", "const")})
        lines.append(f"group {g.index}: {g.kind} over shape {list(g.shape)}"
                     + (f", reducing axes {list(g.axes)}" if g.axes else ""))
        lines.append(f"  reads:  {', '.join(_slot_name(plan, s, names) for s in g.inputs) or '(nothing)'}")
        lines.append(f"  writes: {', '.join(_slot_name(plan, s, names) for _, s in g.outputs)}")
        lines.append(f"  ops:    {', '.join(ops)}")
        if g.kind != "matmul":
            sort = g.program.library_sort
            if sort is not None:
                lines.append(f"  sort:   the array library's, of {sort[1]} row(s) of {sort[2]} indices "
                             f"into {sort[3]} buckets (CuPy: a device sort), before the kernel")
            lines.extend(f"  kernel: {r}" for r in kernel_resources(g))
        if source:
            lines.append("  source:")
            lines.extend("    " + ln for ln in g.source.splitlines())
    return "\n".join(lines)


def kernel_resources(group, arch: str | None = None) -> list[str]:
    """Registers, shared and stack bytes of each kernel of a group, as ptxas reports them for
    the GPU in use (or sm_90 without one); compiled once per group and architecture."""
    if arch is None:
        arch = getattr(current(), "arch", "sm_90")
    cached = group.cache.get(("resources", arch))
    if cached is None:
        if not nvrtc.available():
            return ["registers and shared memory unknown: NVRTC is not installed"]
        try:
            found = nvrtc.compile_source(group.program.source, arch).resources
            cached = [str(found[k]) if k in found else f"{k}: not in the ptxas report"
                      for k in (launch.kernel for launch in group.program.launches)]
        except nvrtc.KernelCompileError as exc:
            cached = [f"does not compile: {str(exc).splitlines()[0]}"]
        group.cache[("resources", arch)] = cached
    return cached


class Explanation:
    """The plan with names for its buffers; str() prints it, .groups holds the groups."""

    def __init__(self, plan, names: dict):
        self.plan = plan
        self.names = names
        self.groups = plan.groups

    def __str__(self) -> str:
        return format_plan(self.plan, self.names)

    def summary(self) -> str:
        return format_plan(self.plan, self.names, source=False)

    __repr__ = summary


def explain(f: Callable, var_list: Sequence | None = None) -> Explanation:
    """The plan that variable_grads(f, var_list) would run, without running it."""
    plan, names = plan_variable_grads(f, var_list)
    return Explanation(plan, names)
