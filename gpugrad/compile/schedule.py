"""Graph -> plan: which values are stored, which are recomputed, and how kernels group.

Only six kinds of values are written to memory: the requested outputs, reductions, matmul
results and operands, scans (cumsum, cumprod) and scatter_adds with their operands (scans and
scatter_adds have kernels of their own). Everything else (elementwise ops, casts, reshapes,
transposes, broadcasts, slices, pads, gathers) is recomputed inside the kernel that consumes
it, so an elementwise chain costs one read of its inputs and one write of its outputs.

Stored values are grouped into kernels by level (1 + the deepest stored value they read):
values of one level cannot depend on each other, so all elementwise outputs of one shape,
and all reductions over that same shape and axes, become one kernel. For the seed function
this puts the loss and both gradients in a single multi-output kernel.

Plans are keyed by graph structure (ops, args, dtypes, leaf shapes, which leaves repeat) and
cached, so a repeated call only traces and looks up.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

from gpugrad.core import primitives as P
from gpugrad.core.caches import LRU
from gpugrad.compile import codegen
from gpugrad.core.snippets import snippet_path
from gpugrad.core.tensor import Tensor

ALIASES = frozenset((P.STOP_GRADIENT, P.IDENTITY, "custom_grad"))


def resolve(node: Tensor) -> Tensor:
    """Identity ops that exist only for autodiff (stop_gradient, identity, custom_grad) read
    as their input."""
    while node.op in ALIASES and node.buf is None:
        node = node.src[0]
    return node


class Instr:
    """One step of a kernel group: op over earlier steps (srcs are indices into the group)."""

    __slots__ = ("op", "arg", "shape", "dtype", "srcs")

    def __init__(self, op: str, arg: Any, shape: tuple, dtype: str, srcs: tuple):
        self.op, self.arg, self.shape, self.dtype, self.srcs = op, arg, shape, dtype, srcs

    def __repr__(self) -> str:
        return f"{self.op}{list(self.srcs)}" + (f"<{self.arg}>" if self.arg is not None else "")


class Group:
    """One generated kernel: a program over loaded buffers, writing some outputs."""

    __slots__ = ("index", "kind", "shape", "axes", "instrs", "inputs", "outputs", "_source", "cache")

    def __init__(self, index: int, kind: str, shape: tuple, axes: tuple):
        self.index, self.kind, self.shape, self.axes = index, kind, shape, axes
        self.instrs: list[Instr] = []
        self.inputs: list[int] = []          # slots read
        self.outputs: list[tuple] = []       # (instr index, slot)
        self._source = None
        self.cache: dict = {}                # per-backend compiled form

    @property
    def name(self) -> str:
        return f"gg_{self.kind.replace('-', '_')}_{self.index}"

    @property
    def program(self):
        """The CUDA program (source and launches) this group compiles to, generated once."""
        if self._source is None:
            self._source = codegen.generate(self)
        return self._source

    @property
    def source(self) -> str:
        if self.kind == "matmul":
            return "// cuBLAS GEMM through cupy.matmul (float32 without TF32 unless enabled)"
        return self.program.source

    def snippet_files(self) -> list[str]:
        names = sorted({i.op for i in self.instrs if i.op in P.ELEMENTWISE})
        return [str(snippet_path(n)) for n in names]


class Plan:
    __slots__ = ("n_inputs", "input_specs", "groups", "outputs", "free_after", "slot_specs", "copies",
                 "runners")

    def __init__(self):
        self.runners: dict = {}      # per backend: the plan as one Python function (interpret.py)
        self.groups: list[Group] = []
        self.outputs: list[int] = []
        self.free_after: list[list[int]] = []
        # Outputs (by position) that no kernel writes afresh: an input returned as it is, or a
        # slot (or a view of it) that an earlier output already returns. They are copied, so
        # that no result shares memory with a variable, an input or another result.
        self.copies: tuple = ()

    def __repr__(self) -> str:   # gpugrad.api.explain formats a plan in full
        return f"<Plan: {len(self.groups)} kernel group(s), {self.n_inputs} input buffer(s)>"


# --- tracing: structure key, leaves, nodes ---------------------------------------------------


_by_id = operator.attrgetter("id")


def structure(outputs: Sequence[Tensor], keep_aliases: bool = False) -> tuple[tuple, list[Tensor], list[Tensor]]:
    """Post-order walk of the unrealized graph under outputs.

    Returns the structural key, the leaves (realized tensors, in first-use order) and all
    nodes in post-order (so in topological order). Aliases read as their input; with
    keep_aliases they are marked in the key (they change gradients, not values), and a
    custom gradient makes the key None (its function may close over anything)."""
    # Ids grow in creation order and every node is made after its inputs, so sorting the
    # reachable nodes by id is a topological order; that costs less than a post-order walk.
    seen: dict = {}
    stack = list(outputs)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen[n] = None
            if n.buf is None and n.op != "const":
                stack.extend(n.src if n.op not in ALIASES else n.src[:1])
    index: dict = {}   # node -> its ordinal, its entry in the key
    key: list = []
    leaves: list[Tensor] = []
    nodes: list[Tensor] = []
    for n in sorted(seen, key=_by_id):
        if n.buf is not None:
            key.append(("B", n.shape, n.dtype))
            leaves.append(n)
        elif n.op == "const":
            key.append(("C", repr(n.arg), n.shape, n.dtype))
        elif n.op in ALIASES:
            if not keep_aliases:
                index[n] = index[n.src[0]]
                continue
            if n.op == "custom_grad":
                return None, leaves, nodes
            key.append(("alias", n.op, index[n.src[0]]))
            index[n] = len(key) - 1
            continue
        else:
            key.append((n.op, n.arg, n.dtype, n.shape, tuple([index[s] for s in n.src])))
        index[n] = len(key) - 1
        nodes.append(n)
    key.append(tuple([index[o] for o in outputs]))
    return tuple(key), leaves, nodes


# --- planning --------------------------------------------------------------------------------

_MOVEMENT_VIEWS = frozenset(("reshape", "permute", "expand"))


def build_plan(outputs: Sequence[Tensor], nodes: list[Tensor]) -> Plan:
    """Schedule the graph (nodes in topological order, as from structure())."""
    for n in nodes:
        if n.op == "buffer" and n.buf is None:  # data disposed before its dependents ran
            raise ValueError(
                f"Tensor is disposed. (a lazy tensor reads a {n.dtype} tensor of shape "
                f"{list(n.shape)} that was disposed before the lazy tensor was computed; compute "
                "it (print, numpy(), realize()) before disposing what it reads, or tf.keep() it "
                "inside tf.tidy.)")
    pos = {id(n): i for i, n in enumerate(nodes)}
    srcs = [tuple(pos[id(resolve(s))] for s in n.src) if n.buf is None and n.op != "const" else ()
            for n in nodes]
    is_leaf = [n.buf is not None for n in nodes]
    out_pos = [pos[id(resolve(o))] for o in outputs]

    # barrier: must be in memory for another kernel (reductions, matmuls and their operands);
    # stored: written by some kernel (barriers and requested outputs). Consumers recompute
    # every stored value that is not a barrier instead of reading it back.
    barrier = [False] * len(nodes)
    for i, n in enumerate(nodes):
        if is_leaf[i]:
            continue
        if n.op in P.REDUCE or n.op == P.MATMUL or n.op in P.SCAN:
            barrier[i] = True
        if n.op == P.MATMUL:
            for s in srcs[i]:
                _store_matmul_operand(s, nodes, srcs, is_leaf, barrier)
        if n.op == "scatter_add":
            # A group of its own (a sort of the indices, then a segmented sum: codegen's
            # _scatter), reading both operands at data-dependent places: they are read from
            # memory, never recomputed per iteration. A reshape keeps the flat layout, so it
            # reads its source's buffer as it is.
            barrier[i] = True
            for s in srcs[i]:
                while nodes[s].op == "reshape" and not is_leaf[s] and not barrier[s]:
                    s = srcs[s][0]
                if not is_leaf[s]:
                    barrier[s] = True
    views: dict[int, int] = {}      # output position -> the node it is a reshape of
    for k, i in enumerate(out_pos):
        base = i
        while nodes[base].op == "reshape" and not is_leaf[base] and not barrier[base]:
            base = srcs[base][0]
        if base != i and (is_leaf[base] or barrier[base]):
            views[k] = base
    stored = list(barrier)
    for k, i in enumerate(out_pos):
        if k not in views and not is_leaf[i]:
            stored[i] = True

    level = [0] * len(nodes)   # 1 + the deepest barrier a stored value reads
    reads = [0] * len(nodes)   # the deepest barrier a value reads, through recomputed values
    for i, n in enumerate(nodes):
        if is_leaf[i] or not srcs[i]:
            continue
        reads[i] = max((level[s] if barrier[s] else reads[s]) for s in srcs[i])
        if stored[i]:
            level[i] = reads[i] + 1

    plan = Plan()
    plan.n_inputs = sum(is_leaf)
    slot = {}
    for i in range(len(nodes)):
        if is_leaf[i]:
            slot[i] = len(slot)
    plan.input_specs = [(nodes[i].shape, nodes[i].dtype) for i in slot]
    for i in range(len(nodes)):
        if stored[i]:
            slot[i] = len(slot)
    plan.slot_specs = [None] * len(slot)
    for i, s in slot.items():
        plan.slot_specs[s] = (nodes[i].shape, nodes[i].dtype)

    buckets: dict[tuple, list[int]] = {}
    for i, n in enumerate(nodes):
        if not stored[i]:
            continue
        if n.op in P.REDUCE:
            bucket = (level[i], "reduce", nodes[srcs[i][0]].shape, n.arg)
        elif n.op == P.MATMUL:
            bucket = (level[i], "matmul", i)
        elif n.op in P.SCAN:
            bucket = (level[i], "scan", i)
        elif n.op == "scatter_add":
            bucket = (level[i], "scatter", i)
        else:
            bucket = (level[i], "elementwise", n.shape)
        buckets.setdefault(bucket, []).append(i)
    # elementwise outputs over the same shape join a reduction of that shape as siblings
    for bkey in [k for k in buckets if k[1] == "elementwise"]:
        host = next((k for k in buckets if k[1] == "reduce" and k[0] == bkey[0] and k[2] == bkey[2]), None)
        if host is not None:
            buckets[host].extend(buckets.pop(bkey))

    for bkey in sorted(buckets, key=lambda k: (k[0], min(buckets[k]))):
        members = buckets[bkey]
        kind = bkey[1]
        if kind == "reduce":
            has_ew = any(nodes[m].op not in P.REDUCE for m in members)
            kind = "multi-output" if has_ew else "reduction"
            group = Group(len(plan.groups), kind, bkey[2], bkey[3])
        elif kind in ("matmul", "scan", "scatter"):
            group = Group(len(plan.groups), kind, nodes[members[0]].shape, ())
        else:
            group = Group(len(plan.groups), "elementwise", bkey[2], ())
        _emit_group(group, sorted(members), nodes, srcs, barrier, is_leaf, slot)
        plan.groups.append(group)

    plan.outputs = [(slot[views.get(k, i)], nodes[i].shape) for k, i in enumerate(out_pos)]
    taken: set = set()
    copies = []
    for k, (s, _) in enumerate(plan.outputs):
        if s < plan.n_inputs or s in taken:
            copies.append(k)
        taken.add(s)
    plan.copies = tuple(copies)
    last_use: dict[int, int] = {}
    for g in plan.groups:
        for s in g.inputs:
            last_use[s] = g.index
    keep = {s for s, _ in plan.outputs} | set(range(plan.n_inputs))
    plan.free_after = [[] for _ in plan.groups]
    for s, g in last_use.items():
        if s not in keep:
            plan.free_after[g].append(s)
    return plan


def _store_matmul_operand(s, nodes, srcs, is_leaf, stored):
    """cuBLAS reads strided views of stored values: a transpose or reshape of a stored value
    is passed as a view; anything computed is stored first."""
    while not is_leaf[s] and not stored[s] and nodes[s].op in _MOVEMENT_VIEWS and nodes[s].op != "expand":
        s = srcs[s][0]
    if not is_leaf[s] and nodes[s].op != "const":
        stored[s] = True
    elif nodes[s].op == "const":
        stored[s] = True


def _emit_group(group, members, nodes, srcs, barrier, is_leaf, slot):
    local: dict[int, int] = {}
    instrs = group.instrs
    # Equal instructions are emitted once: derivative rules rebuild forward values (tanh's
    # rule squares tanh again, say), and each would otherwise cost a pass.
    seen: dict[tuple, int] = {}

    def emit(root: int) -> int:
        stack = [root]
        while stack:
            i = stack[-1]
            if i in local:
                stack.pop()
                continue
            n = nodes[i]
            if is_leaf[i] or (barrier[i] and i != root):
                if slot[i] not in group.inputs:
                    group.inputs.append(slot[i])
                instr = Instr("load", slot[i], n.shape, n.dtype, ())
            elif n.op == "const":
                instr = Instr("const", n.arg, n.shape, n.dtype, ())
            else:
                pending = [s for s in srcs[i] if s not in local]
                if pending:
                    stack.extend(pending)
                    continue
                arg = n.arg
                if n.op in P.ELEMENTWISE:
                    arg = nodes[srcs[i][-1]].dtype  # the compute dtype (T of the snippet)
                instr = Instr(n.op, arg, n.shape, n.dtype, tuple(local[s] for s in srcs[i]))
            stack.pop()
            key = (instr.op, instr.arg, instr.dtype, instr.shape, instr.srcs)
            if instr.op == "const":
                key = ("const", repr(instr.arg), instr.dtype, instr.shape)
            found = seen.get(key)
            if found is None or i == root:
                found = seen[key] = len(instrs)
                instrs.append(instr)
            local[i] = found
        return local[root]

    for m in members:
        group.outputs.append((emit(m), slot[m]))


def size(shape: tuple) -> int:
    return math.prod(shape)


class PlanCache(LRU):
    """Plans by structural key, least recently used first out."""

    def __init__(self, name: str, limit: int = 4096):
        super().__init__(name, limit)
