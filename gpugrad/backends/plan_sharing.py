"""Values one group of a plan computes and a later group computes again, handed over instead.

The schedule recomputes every non-stored value inside each kernel that reads it: on a GPU a
recomputation is cheaper than a round trip through memory. On the CPU, where a group is a
sequence of numpy calls over whole arrays, the same value costs the same call again (a
softmax cross-entropy computes its logits' exp in two groups, relu's mask in the forward and
the backward group). For a plan run as one generated function, such a value is kept from the
first group that computes it and read by the later ones: the same operations on the same
operands, so the same bits, computed once.
"""
from __future__ import annotations

from gpugrad.core import primitives as P

# copy hands back its operand (no new array): nothing to save, and not a buffer of its own
_SHAREABLE = (P.ELEMENTWISE - {"copy"}) | {P.CAST}


class Sharing:
    """For each group, {instruction: side slot} it exports (after computing) and imports
    (instead of computing), and the instructions it no longer computes. Side slots follow the
    plan's slots; ``last_reader[side]`` is the last group that imports it. ``free_after[g]``:
    the slots (side slots included) no group reads after g; ``donated[g]``: those of them
    whose buffers group g may write into (its temporaries of their shape and dtype reuse
    them, as the hand-written numpy code writes into the arrays it no longer needs)."""

    __slots__ = ("exports", "imports", "skipped", "n_side", "last_reader", "free_after", "donated")

    def __init__(self, n_groups: int):
        self.exports = [dict() for _ in range(n_groups)]
        self.imports = [dict() for _ in range(n_groups)]
        self.skipped = [set() for _ in range(n_groups)]
        self.n_side = 0
        self.last_reader: dict[int, int] = {}
        self.free_after = [[] for _ in range(n_groups)]
        self.donated = [set() for _ in range(n_groups)]


def _hashable(arg):
    try:
        hash(arg)
        return arg
    except TypeError:
        return ("unhashable", id(arg))   # never equal to another step's: not shared


def find_sharing(plan) -> Sharing:
    """Which elementwise values of later groups an earlier group already computes. A value is
    identified by its op, argument, dtype, shape and (recursively) its operands, a load by
    its slot. Each group imports the largest such values it needs and skips what only they
    needed; constant-only values are left alone (the writer folds them)."""
    sharing = Sharing(len(plan.groups))
    intern: dict[tuple, int] = {}
    first: dict[int, tuple[int, int]] = {}   # value id -> (group, instruction) computing it
    side_of: dict[int, int] = {}
    base = len(plan.slot_specs)
    for g, group in enumerate(plan.groups):
        ids, constant = [], []
        for ins in group.instrs:
            key = ("load", ins.arg) if ins.op == "load" else \
                (ins.op, _hashable(ins.arg), ins.dtype, ins.shape, tuple(ids[s] for s in ins.srcs))
            ids.append(intern.setdefault(key, len(intern)))
            constant.append(ins.op == "const" or (ins.op != "load" and ins.srcs != ()
                                                  and all(constant[s] for s in ins.srcs)))
        needed = [False] * len(group.instrs)
        for i, _ in group.outputs:
            needed[i] = True
        imports = sharing.imports[g]
        # instructions come in topological order: walking back visits readers first
        for k in range(len(group.instrs) - 1, -1, -1):
            if not needed[k]:
                continue
            ins = group.instrs[k]
            source = first.get(ids[k])
            if source is not None and ins.op in _SHAREABLE and not constant[k]:
                side = side_of.get(ids[k])
                if side is None:
                    side = side_of[ids[k]] = base + sharing.n_side
                    sharing.n_side += 1
                    sharing.exports[source[0]][source[1]] = side
                imports[k] = side
                sharing.last_reader[side] = g
                continue
            for s in ins.srcs:
                needed[s] = True
        sharing.skipped[g] = {k for k, n in enumerate(needed) if not n}
        if group.kind == "matmul":
            continue
        for k, ins in enumerate(group.instrs):
            if needed[k] and k not in imports and ins.op in _SHAREABLE and not _reads_unslice(group, k):
                first.setdefault(ids[k], (g, k))
    _lifetimes(plan, sharing)
    return sharing


def _lifetimes(plan, sharing: Sharing) -> None:
    """Each slot dies after the last group that still loads it (an import can make a group's
    load of it unnecessary). A dying slot's buffer is donated to that group unless it is an
    input or output of the plan, or the same array as a side value (an exported step that is
    also its group's output), which later groups still read."""
    last_load: dict[int, int] = {}
    for g, group in enumerate(plan.groups):
        for k, ins in enumerate(group.instrs):
            if ins.op == "load" and k not in sharing.skipped[g]:
                last_load[ins.arg] = g
    keep = set(range(plan.n_inputs)) | {s for s, _ in plan.outputs}
    aliased = {s for g, group in enumerate(plan.groups) for i, s in group.outputs if i in sharing.exports[g]}
    for s, g in last_load.items():
        if s not in keep:
            sharing.free_after[g].append(s)
            if s not in aliased:
                sharing.donated[g].add(s)
    for side, g in sharing.last_reader.items():
        sharing.free_after[g].append(side)


def _reads_unslice(group, k: int) -> bool:
    """An add of a pad is written as an in-place add into a buffer (interpret's
    _add_of_unslice): its result is that buffer, which the group may go on to change."""
    return any(group.instrs[s].op == "unslice" for s in group.instrs[k].srcs)
