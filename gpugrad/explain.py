"""explain(): the plan variable_grads would run, readable by a person."""
from __future__ import annotations

from typing import Callable, Sequence



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
        if source:
            lines.append("  source:")
            lines.extend("    " + ln for ln in g.source.splitlines())
    return "\n".join(lines)


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
    from .autodiff import plan_variable_grads
    plan, names = plan_variable_grads(f, var_list)
    return Explanation(plan, names)
