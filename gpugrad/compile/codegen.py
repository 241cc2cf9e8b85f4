"""A plan's group -> CUDA source, composed from the kernels/ snippets and templates.

Every value in a group is computed at the index where its consumer needs it: an elementwise
op at its consumer's index, a broadcast input at that index with broadcast axes pinned to 0,
a transpose at permuted coordinates, a slice at start + step * index, a pad (unslice) under
a bounds test, a gather at the index its index operand holds there. A scatter_add is a group of its own:
a sort of its indices, then a sum over each output element's share of them. Nothing but the group's outputs is written, and shapes are compile-time
constants, so the index arithmetic folds away where it can.
"""
from __future__ import annotations

import math
from string import Template
from typing import Sequence

from gpugrad.core import dtypes
from gpugrad.core import primitives as P
from gpugrad.core.snippets import snippet, template

BLOCK = 256
TARGET_BLOCKS = 2048        # enough blocks to fill an H100/H200 several times over
MIN_CHUNK = 4096            # elements per block below which a second stage is not worth it
ELEMENTWISE_GRID = TARGET_BLOCKS * 4
REDUCTION_GRID = 1 << 20
# The largest step any grid-stride loop of a generated kernel takes: blocks x threads of an
# elementwise launch, the block count of a reduction's loop over its (output, chunk) pairs.
MAX_STRIDE = max(ELEMENTWISE_GRID * BLOCK, REDUCTION_GRID, BLOCK)
INT32_MAX = 2**31 - 1


class Launch:
    __slots__ = ("kernel", "grid", "block", "params")

    def __init__(self, kernel: str, grid: int, block: int, params: list):
        self.kernel, self.grid, self.block, self.params = kernel, grid, block, params


class CudaProgram:
    """The source of one group and how to launch it: params are ('in', slot), ('out', slot)
    or ('scratch', k); scratch buffers hold stage-1 partial results. ``library_sort``: for a
    scatter_add with many indices per row, (index slot, B, K, N) of the bucket sort that the
    array library runs into scratch 0 (starts) and 1 (perm) before the launches."""

    __slots__ = ("source", "launches", "scratch", "library_sort")

    def __init__(self, source: str, launches: list, scratch: list, library_sort: tuple | None = None):
        self.source, self.launches, self.scratch = source, launches, scratch
        self.library_sort = library_sort


def _ctype(dtype: str) -> str:
    return dtypes.CUDA[dtype]


def _literal(value, dtype: str) -> str:
    if dtype == dtypes.bool_:
        return "true" if value else "false"
    if dtype == dtypes.int32:
        return f"({int(value)})" if value != -2**31 else "(-2147483647 - 1)"
    v = float(value)
    ct = _ctype(dtype)
    if math.isnan(v):
        return f"(({ct})NAN_VALUE)"
    if math.isinf(v):
        return f"(({ct})({'-' if v < 0 else ''}INF_VALUE))"
    return f"(({ct}){v!r})"


def _strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


class _Emitter:
    """Writes a group's body: one const per (instruction, index) pair, shared where equal."""

    def __init__(self, instrs, indent: str = "    "):
        self.instrs = instrs
        self.lines: list[str] = []
        self.names: dict = {}
        self.count = 0
        self.indent = indent
        self.used_ops: set[str] = set()

    def _fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def _let(self, ctype: str, expr: str, prefix: str = "v") -> str:
        key = ("let", ctype, expr)
        if key in self.names:
            return self.names[key]
        name = self._fresh(prefix)
        self.lines.append(f"{self.indent}const {ctype} {name} = {expr};")
        self.names[key] = name
        return name

    # index maps: ('flat', expr) or ('coords', (expr per axis))
    def coords(self, imap, shape) -> tuple:
        if imap[0] == "coords":
            return imap[1]
        flat = imap[1]
        out = []
        for d, (size, stride) in enumerate(zip(shape, _strides(shape))):
            if size == 1:
                out.append("0")
                continue
            expr = flat if stride == 1 else f"({flat}) / {stride}"
            if d > 0 or stride * size != math.prod(shape):
                expr = f"({expr}) % {size}"
            out.append(self._let("idx_t", expr, "c"))
        return tuple(out)

    def flat(self, imap, shape) -> str:
        if imap[0] == "flat":
            return imap[1]
        terms = [f"{c} * {s}" if s != 1 else c
                 for c, s, n in zip(imap[1], _strides(shape), shape) if n != 1 and c != "0"]
        return self._let("idx_t", " + ".join(terms) if terms else "0", "f")

    def value(self, i: int, imap) -> str:
        """The name holding instruction i's value at index map imap. Iterative, not recursive:
        a group may chain thousands of ops."""
        stack = [(i, imap)]
        while stack:
            item = stack[-1]
            if item in self.names:
                stack.pop()
                continue
            deps = self._deps(*item)
            missing = [d for d in deps if d not in self.names]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            self.names[item] = self._emit(item[0], item[1], [self.names[d] for d in deps])
        return self.names[(i, imap)]

    def _deps(self, i: int, imap) -> list:
        """The (instruction, index map) pairs instruction i reads at imap."""
        ins = self.instrs[i]
        rule = _READS.get(ins.op)
        if rule is None:
            raise NotImplementedError(f"codegen cannot inline primitive {ins.op!r}")
        return rule(self, ins, imap)

    def _emit(self, i: int, imap, args: list) -> str:
        ins = self.instrs[i]
        return _VALUES.get(ins.op, _moved)(self, ins, imap, args)

    def _unslice_index(self, ins, imap) -> tuple:
        """(name of the in-bounds test, clamped source coordinates) of a pad at imap."""
        shape, slices = ins.arg
        src_shape = self.instrs[ins.srcs[0]].shape
        tests, child = [], []
        for c, (start, _, step), n in zip(self.coords(imap, shape), slices, src_shape):
            offset = f"({c} - {start})" if step > 0 else f"({start} - {c})"
            stride = builtin_abs(step)
            q = offset if stride == 1 else f"{offset} / {stride}"
            tests.append(f"{offset} >= 0")
            if stride != 1:
                tests.append(f"{offset} % {stride} == 0")
            tests.append(f"{q} < {n}")
            child.append(q)
        inside = self._let("bool", " && ".join(tests), "inside")
        clamped = tuple(self._let("idx_t", f"{inside} ? (idx_t)({q}) : (idx_t)0", "q") for q in child)
        return inside, clamped


# --- per-primitive tables -----------------------------------------------------------------------
# _READS[op](emitter, ins, imap): the (instruction, index map) pairs a step reads at imap.
# _VALUES[op](emitter, ins, imap, names): the expression naming the step's value there.


def _same_index(em, ins, imap) -> list:
    return [(s, imap) for s in ins.srcs]


def _reads_reshape(em, ins, imap) -> list:
    return [(ins.srcs[0], ("flat", em.flat(imap, ins.shape)))]


def _reads_permute(em, ins, imap) -> list:
    pc = em.coords(imap, ins.shape)
    child = [None] * len(pc)
    for j, p in enumerate(ins.arg):
        child[p] = pc[j]
    return [(ins.srcs[0], ("coords", tuple(child)))]


def _reads_expand(em, ins, imap) -> list:
    pc = em.coords(imap, ins.shape)
    src_shape = em.instrs[ins.srcs[0]].shape
    return [(ins.srcs[0], ("coords", tuple("0" if a == 1 and b != 1 else c
                                            for c, a, b in zip(pc, src_shape, ins.shape))))]


def _reads_slice(em, ins, imap) -> list:
    child = []
    for c, (start, _, step) in zip(em.coords(imap, ins.shape), ins.arg):
        expr = c if step == 1 else f"{step} * {c}"
        child.append(expr if start == 0 else f"({start} + {expr})")
    return [(ins.srcs[0], ("coords", tuple(child)))]


def _reads_unslice(em, ins, imap) -> list:
    return [(ins.srcs[0], ("coords", em._unslice_index(ins, imap)[1]))]


def _reads_gather(em, ins, imap) -> list:
    """The index first; once its value has a name, the source at the index it holds (clamped
    into range, so that no read leaves the buffer; the value there is replaced by 0)."""
    b, o, _, c = em.coords(imap, ins.shape)
    index = (ins.srcs[1], ("coords", (b, _)))
    name = em.names.get(index)
    if name is None:
        return [index]
    n = em.instrs[ins.srcs[0]].shape[2]
    q = em._let("idx_t", f"({name} >= 0 && {name} < {n}) ? (idx_t){name} : (idx_t)0", "g")
    return [index, (ins.srcs[0], ("coords", (b, o, q, c)))]


def _gather_value(em, ins, imap, args) -> str:
    n = em.instrs[ins.srcs[0]].shape[2]
    index, value = args
    return em._let(_ctype(ins.dtype), f"({index} >= 0 && {index} < {n}) ? {value} : {_literal(0, ins.dtype)}")


def _stored(instrs, i: int):
    """The load a value is a reshape (same flat layout) of."""
    while instrs[i].op == "reshape":
        i = instrs[i].srcs[0]
    if instrs[i].op != "load":
        raise AssertionError("scatter_add reads stored operands (schedule.build_plan stores them)")
    return instrs[i]


def _scatter_add_value(em, ins, imap, args) -> str:
    """The sum of bucket n's values in increasing k: positions [starts[n], starts[n + 1]) of
    perm, which the group's sort kernel wrote (see _scatter). O(its indices) per output element."""
    B, O, K, C = em.instrs[ins.srcs[0]].shape
    N = ins.shape[2]
    y = _stored(em.instrs, ins.srcs[0])
    b, o, n, c = em.coords(imap, ins.shape)
    ct = _ctype(ins.dtype)
    acc, p = em._fresh("s"), em._fresh("p")
    at = f"({b}) * {N + 2} + ({n})"
    row = f"(({b}) * {O} + ({o})) * {K}"
    em.lines.append(f"{em.indent}{ct} {acc} = {_literal(0, ins.dtype)};")
    em.lines.append(f"{em.indent}for (idx_t {p} = gg_starts[{at}]; {p} < gg_starts[{at} + 1]; ++{p}) "
                    f"{acc} += in{y.arg}[({row} + gg_perm[({b}) * {K} + {p}]) * {C} + ({c})];")
    return acc


def _reads_nothing(em, ins, imap) -> list:
    return []


def _load_value(em, ins, imap, args) -> str:
    return em._let(_ctype(ins.dtype), f"in{ins.arg}[{em.flat(imap, ins.shape)}]")


def _const_value(em, ins, imap, args) -> str:
    return _literal(ins.arg, ins.dtype)


def _snippet_value(em, ins, imap, args) -> str:
    em.used_ops.add(ins.op)
    return em._let(_ctype(ins.dtype), f"gg_{ins.op}<{_ctype(ins.arg)}>({', '.join(args)})")


def _cast_value(em, ins, imap, args) -> str:
    ct = _ctype(ins.dtype)
    return em._let(ct, f"static_cast<{ct}>({args[0]})")


def _unslice_value(em, ins, imap, args) -> str:
    inside = em._unslice_index(ins, imap)[0]
    return em._let(_ctype(ins.dtype), f"{inside} ? {args[0]} : {_literal(0, ins.dtype)}")


def _moved(em, ins, imap, args) -> str:
    return args[0]  # movement: the source's value at the mapped index


_READS = {"load": _reads_nothing, "const": _reads_nothing, P.CAST: _same_index,
          "reshape": _reads_reshape, "permute": _reads_permute, "expand": _reads_expand,
          "slice": _reads_slice, "unslice": _reads_unslice, "gather": _reads_gather,
          "scatter_add": _reads_nothing,
          **{op: _same_index for op in P.ELEMENTWISE}}
_VALUES = {"load": _load_value, "const": _const_value, P.CAST: _cast_value,
           "unslice": _unslice_value, "gather": _gather_value, "scatter_add": _scatter_add_value, **{op: _snippet_value for op in P.ELEMENTWISE}}


def builtin_abs(v: int) -> int:
    return v if v >= 0 else -v


def _device_functions(ops: set[str], instrs) -> str:
    out = []
    for op in sorted(ops):
        params = {1: "T x", 2: "T x, T y", 3: "bool c, T x, T y"}[P.ARITY[op]]
        ret = "bool" if op in P.COMPARISONS or op in P.LOGICAL else "T"
        out.append(f"// kernels/elementwise/{op}.cu\n"
                   f"template <typename T> __device__ __forceinline__ {ret} gg_{op}({params}) "
                   f"{{ return {snippet(op)}; }}")
    return "\n".join(out)


def _header(index_type: str) -> str:
    return (f"typedef {index_type} idx_t;\n"
            "#define INF_VALUE __longlong_as_double(0x7ff0000000000000LL)\n"
            "#define NAN_VALUE __longlong_as_double(0x7ff8000000000000LL)\n"
            + template("prelude"))


def _params(group, instrs, out_slots: list, extra: list) -> tuple[str, list]:
    params, refs = [], []
    dtype_of_slot = {}
    for ins in instrs:
        if ins.op == "load":
            dtype_of_slot[ins.arg] = ins.dtype
    for s in group.inputs:
        params.append(f"const {_ctype(dtype_of_slot[s])}* __restrict__ in{s}")
        refs.append(("in", s))
    for s, dtype in out_slots:
        params.append(f"{_ctype(dtype)}* __restrict__ out{s}")
        refs.append(("out", s))
    for decl, ref in extra:
        params.append(decl)
        refs.append(ref)
    return ", ".join(params), refs


def generate(group) -> CudaProgram:
    if group.kind == "matmul":
        raise ValueError("matmul groups run on cuBLAS (cupy.matmul); they have no generated source")
    total = math.prod(group.shape)
    index_type = index_type_for(group_extents(group))
    if group.kind == "elementwise":
        return _elementwise(group, total, index_type)
    if group.kind == "scan":
        return _scan(group, index_type)
    if group.kind == "scatter":
        return _scatter(group, total, index_type)
    return _reduction(group, index_type)


def group_extents(group) -> list[int]:
    """Element counts of every index space a group's kernels address: its iteration space,
    each buffer it loads or stores, and a stage-1 scratch (at most the iteration space)."""
    return [math.prod(group.shape)] + [math.prod(ins.shape) for ins in group.instrs]


def index_type_for(extents: Sequence[int]) -> str:
    """32-bit indices where no index value a kernel forms can pass INT32_MAX, 64-bit otherwise.

    Every index a kernel holds is below the largest extent E it addresses, except in two
    places: a grid-stride loop's index after its last step (below E + MAX_STRIDE) and a
    reduction chunk's end before clamping (below 2E). So E <= (INT32_MAX - MAX_STRIDE) / 2
    keeps all of them representable; the loop exits before anything wraps."""
    return "int" if 2 * max(extents, default=0) + MAX_STRIDE <= INT32_MAX else "long long"


def _elementwise(group, total: int, index_type: str, extra: Sequence = (), before: Sequence = ()) -> CudaProgram:
    """One grid-stride kernel computing every output at its index; ``before``: (source,
    launches, scratch) of kernels that run first, ``extra``: their scratch as parameters."""
    em = _Emitter(group.instrs)
    stores = []
    out_slots = []
    for i, s in group.outputs:
        v = em.value(i, ("flat", "i"))
        stores.append(f"    out{s}[i] = {v};")
        out_slots.append((s, group.instrs[i].dtype))
    params, refs = _params(group, group.instrs, out_slots, extra)
    body = Template(template("elementwise")).substitute(
        name=group.name, params=params, size=total, body="\n".join(em.lines), stores="\n".join(stores))
    first_source, first_launches, scratch = before or ("", [], [])
    source = "\n".join((_header(index_type), _device_functions(em.used_ops, group.instrs), first_source, body))
    grid = max(1, min(-(-total // BLOCK), ELEMENTWISE_GRID))
    return CudaProgram(source, [*first_launches, Launch(group.name, grid, BLOCK, refs)], list(scratch))


# Indices per row from which a scatter_add's bucket sort is the array library's (CuPy: a CUB
# radix sort of unique 64-bit keys) instead of the one-block kernel, whose rank pass costs
# O(256) per index on one SM per row. A guess, not yet measured on a GPU.
LIBRARY_SORT_FROM = 4096


def _scatter(group, total: int, index_type: str) -> CudaProgram:
    """A scatter_add (its own group, schedule.build_plan): y (B, O, K, C) summed into
    (B, O, N, C) at the indices (B, K). First the indices are sorted by bucket (index n, or N
    for one outside [0, N)), stably: starts[b, n] is where bucket n begins in row b of perm,
    the k of each index in bucket order. Then each output element adds exactly the values that
    land on it, in increasing k: O(B O (N + K) C) work in all, not O(B O N K C), and no
    atomics, so the result is bitwise repeatable (and equal to a loop over k in order). The
    sort is kernels/templates/scatter_sort.cu below LIBRARY_SORT_FROM indices per row, the
    array library's sort from there."""
    (i, _), = group.outputs
    ins = group.instrs[i]
    B, _, K, _ = group.instrs[ins.srcs[0]].shape
    N = ins.shape[2]
    index = _stored(group.instrs, ins.srcs[1])
    if index.dtype != dtypes.int32:
        raise AssertionError(f"scatter_add indices are int32 (got {index.dtype})")
    if K >= INT32_MAX:
        raise ValueError(f"scatter_add of {K} indices per row: the sort numbers them with int32; "
                         "split the indices into rows of fewer than 2^31")
    scratch = [(B * (N + 2), dtypes.int32), (B * K, dtypes.int32)]
    extra = [("const int* __restrict__ gg_starts", ("scratch", 0)),
             ("const int* __restrict__ gg_perm", ("scratch", 1))]
    if K >= LIBRARY_SORT_FROM:
        program = _elementwise(group, total, index_type, extra, ("", [], scratch))
        program.library_sort = (index.arg, B, K, N)
        return program
    scratch.append((B * (N + 2), dtypes.int32))   # the sort kernel's cursors
    name = f"{group.name}_sort"
    params = (f"const int* __restrict__ in{index.arg}, int* __restrict__ starts, "
              "int* __restrict__ perm, int* __restrict__ cursor")
    refs = [("in", index.arg), ("scratch", 0), ("scratch", 1), ("scratch", 2)]
    sort = Template(template("scatter_sort")).substitute(
        name=name, params=params, index=f"in{index.arg}", batches=B, count=K, buckets=N)
    launch = Launch(name, max(1, min(B, REDUCTION_GRID)), BLOCK, refs)
    return _elementwise(group, total, index_type, extra, (sort, [launch], scratch))


_COMBINE = {
    "sum": "{a} + {b}",
    "prod": "{a} * {b}",
    "max": "(({b}) > ({a}) || ({b}) != ({b})) ? ({b}) : ({a})",
}


def _identity(op: str, dtype: str) -> str:
    if op == "sum":
        return _literal(0, dtype)
    if op == "prod":
        return _literal(1, dtype)
    if dtype == dtypes.int32:
        return "(-2147483647 - 1)"
    if dtype == dtypes.bool_:
        return "false"
    return _literal(-math.inf, dtype)


def _reduction(group, index_type: str) -> CudaProgram:
    axes = group.axes
    shape = group.shape
    kept = [d for i, d in enumerate(shape) if i not in axes]
    red = [d for i, d in enumerate(shape) if i in axes]
    n_out, n_red = math.prod(kept), math.prod(red)
    reductions = [(i, s) for i, s in group.outputs if group.instrs[i].op in P.REDUCE]
    siblings = [(i, s) for i, s in group.outputs if group.instrs[i].op not in P.REDUCE]
    has_arg = any(group.instrs[i].op == "argmax" for i, _ in reductions)
    chunks = 1 if has_arg else max(1, min(-(-TARGET_BLOCKS // max(n_out, 1)), -(-n_red // MIN_CHUNK)))
    chunk = max(1, -(-n_red // chunks))

    em = _Emitter(group.instrs, indent="      ")
    imap = _iteration_map(em, shape, axes, kept, red, n_red)
    inner = ["init", "accumulate", "tree"]
    parts = {k: [] for k in inner}
    shared = _SharedArrays()
    stores = []
    for i, s in siblings:
        v = em.value(i, imap)
        stores.append(f"      out{s}[{em.flat(imap, shape)}] = {v};")
    finals, scratch, extra1, extra2 = [], [], [], []
    out_slots = [(s, group.instrs[i].dtype) for i, s in siblings]
    for k, (i, s) in enumerate(reductions):
        ins = group.instrs[i]
        src = group.instrs[ins.srcs[0]]
        acc_t = _ctype(src.dtype)
        v = em.value(ins.srcs[0], imap)
        if ins.op == "argmax":
            parts["init"].append(f"    {acc_t} acc{k} = {_identity('max', src.dtype)}; idx_t arg{k} = 0;")
            parts["accumulate"].append(
                f"      if (argmax_wins(acc{k}, arg{k}, {v}, r)) {{ acc{k} = {v}; arg{k} = r; }}")
            parts["tree"].append(_tree_arg(k, shared.of(acc_t), shared.of("idx_t"), f"out{s}[o]"))
            out_slots.append((s, ins.dtype))
            continue
        combine = _COMBINE[ins.op]
        parts["init"].append(f"    {acc_t} acc{k} = {_identity(ins.op, src.dtype)};")
        parts["accumulate"].append(f"      acc{k} = {combine.format(a=f'acc{k}', b=v)};")
        if chunks == 1:
            parts["tree"].append(_tree(k, shared.of(acc_t), combine, f"out{s}[o]", _ctype(ins.dtype)))
            out_slots.append((s, ins.dtype))
        else:
            parts["tree"].append(_tree(k, shared.of(acc_t), combine, f"part{k}[b]", acc_t))
            scratch.append((n_out * chunks, src.dtype))
            extra1.append((f"{acc_t}* __restrict__ part{k}", ("scratch", len(scratch) - 1)))
            extra2.append((f"const {acc_t}* __restrict__ part{k}", ("scratch", len(scratch) - 1)))
            finals.append((k, ins, s, acc_t, combine))
    params, refs = _params(group, group.instrs, out_slots, extra1)
    stage1 = Template(template("reduce")).substitute(
        name=group.name, params=params, shared=shared.declarations(), blocks=n_out * chunks,
        chunks=chunks, chunk=chunk, reduced=n_red, init="\n".join(parts["init"]),
        body="\n".join(em.lines), accumulate="\n".join(parts["accumulate"]),
        stores="\n".join(stores), tree="\n".join(parts["tree"]))
    sources = [_header(index_type), _device_functions(em.used_ops, group.instrs), stage1]
    launches = [Launch(group.name, max(1, min(n_out * chunks, REDUCTION_GRID)), BLOCK, refs)]  # grid 0 is a CUDA error
    if finals:
        sources.append(_final_stage(group, finals, extra2, n_out, chunks, launches))
    return CudaProgram("\n".join(sources), launches, scratch)


def _iteration_map(em, shape, axes, kept, red, n_red):
    """Coordinates of the reduction's input from (o, r): o indexes the kept axes, r the reduced."""
    rank = len(shape)
    if len(axes) == rank:
        return ("flat", "r")
    if axes == tuple(range(rank - len(axes), rank)):
        return ("flat", em._let("idx_t", f"o * {n_red} + r", "f"))
    ko = em.coords(("flat", "o"), tuple(kept))
    kr = em.coords(("flat", "r"), tuple(red))
    coords, ki, ri = [], iter(ko), iter(kr)
    for d in range(rank):
        coords.append(next(ri) if d in axes else next(ki))
    return ("coords", tuple(coords))


class _SharedArrays:
    """One __shared__ array per accumulator C type, reused by a group's reductions in turn.

    Each reduction's tree ends in a barrier, and after it only thread 0 reads element 0, so
    the next tree may overwrite the array at once. Shared memory per block is therefore
    BLOCK x (the sizes of the distinct accumulator types), at most a few KiB, however many
    reductions a group fuses (one array per reduction overflowed the 48 KiB static limit at
    25 float64 reductions)."""

    def __init__(self):
        self.arrays: dict[str, str] = {}

    def of(self, ctype: str) -> str:
        name = self.arrays.get(ctype)
        if name is None:
            name = self.arrays[ctype] = f"gg_sh_{ctype.replace(' ', '_')}"
        return name

    def declarations(self) -> str:
        return "\n".join(f"  __shared__ {t} {name}[{BLOCK}];" for t, name in self.arrays.items())


def _tree(k: int, sh: str, combine: str, dest: str, out_t: str) -> str:
    merge = combine.format(a=f"{sh}[threadIdx.x]", b=f"{sh}[threadIdx.x + s]")
    return (f"    {sh}[threadIdx.x] = acc{k};\n    __syncthreads();\n"
            f"    for (int s = blockDim.x / 2; s > 0; s >>= 1) {{\n"
            f"      if (threadIdx.x < s) {sh}[threadIdx.x] = {merge};\n"
            f"      __syncthreads();\n    }}\n"
            f"    if (threadIdx.x == 0) {dest} = ({out_t}){sh}[0];")


def _tree_arg(k: int, sh: str, si: str, dest: str) -> str:
    a, b = f"{sh}[threadIdx.x]", f"{sh}[threadIdx.x + s]"
    ia, ib = f"{si}[threadIdx.x]", f"{si}[threadIdx.x + s]"
    return (f"    {a} = acc{k}; {ia} = arg{k};\n    __syncthreads();\n"
            f"    for (int s = blockDim.x / 2; s > 0; s >>= 1) {{\n"
            f"      if (threadIdx.x < s && argmax_wins({a}, {ia}, {b}, {ib})) {{ {a} = {b}; {ia} = {ib}; }}\n"
            f"      __syncthreads();\n    }}\n"
            f"    if (threadIdx.x == 0) {dest} = (int){si}[0];")


def _final_stage(group, finals, extra2, n_out, chunks, launches) -> str:
    name = f"{group.name}_final"
    shared = _SharedArrays()
    init, acc, tree, params, refs = [], [], [], [], []
    for (k, ins, s, acc_t, combine), (decl, ref) in zip(finals, extra2):
        init.append(f"    {acc_t} acc{k} = {_identity(ins.op, ins.dtype)};")
        acc.append(f"      acc{k} = {combine.format(a=f'acc{k}', b=f'part{k}[o * {chunks} + r]')};")
        tree.append(_tree(k, shared.of(acc_t), combine, f"out{s}[o]", _ctype(ins.dtype)))
        params += [decl, f"{_ctype(ins.dtype)}* __restrict__ out{s}"]
        refs += [ref, ("out", s)]
    launches.append(Launch(name, max(1, min(n_out, REDUCTION_GRID)), BLOCK, refs))
    return Template(template("reduce_final")).substitute(
        name=name, params=", ".join(params), shared=shared.declarations(), outputs=n_out,
        chunks=chunks, init="\n".join(init), accumulate="\n".join(acc), tree="\n".join(tree))


# --- scans (cumsum, cumprod): kernels/templates/scan.cu ------------------------------------------

_SCAN_COMBINE = {"cumsum": "{a} + {b}", "cumprod": "{a} * {b}"}


def _scan(group, index_type: str) -> CudaProgram:
    """One scan over (O, N, C) along N. Lines of the scan are (o, c) pairs. A line longer than
    MIN_CHUNK is cut into chunks scanned by blocks of their own when there are too few lines to
    fill the GPU: a first kernel reduces each chunk to its total (scratch), the second scans each
    chunk again, starting from the combination, in order, of the totals of the chunks before it.
    Work is O(N) per line plus O(chunks^2) for the offsets; the input is read twice then."""
    (i, slot), = group.outputs
    ins = group.instrs[i]
    exclusive, reverse = ins.arg
    o_size, n_size, c_size = ins.shape
    lines = o_size * c_size
    chunks = max(1, min(-(-TARGET_BLOCKS // max(lines, 1)), -(-n_size // MIN_CHUNK)))
    chunk = -(-max(n_size, 1) // chunks)
    chunk = -(-chunk // BLOCK) * BLOCK
    chunks = max(1, -(-n_size // chunk))
    ct = _ctype(ins.dtype)
    combine = _SCAN_COMBINE[ins.op]
    identity = _literal(0 if ins.op == "cumsum" else 1, ins.dtype)
    src = ins.srcs[0]

    def kernel(name: str, what: str, carry: str, store: str, finish: str, params, refs):
        em = _Emitter(group.instrs, indent="        ")
        value = em.value(src, ("coords", ("o", "n", "c")))
        body = Template(template("scan")).substitute(
            what=what, name=name, params=params, acc_t=ct, blocks=lines * chunks, chunks=chunks,
            inner=c_size, chunk=chunk, length=n_size, carry=carry,
            position=f"{n_size - 1} - j" if reverse else "j", identity=identity,
            body="\n".join(em.lines), value=value,
            combine_prev=combine.format(a="prev", b="gg_scan[threadIdx.x]"),
            store=store, combine_carry=combine.format(a="carry", b="gg_scan[255]"), finish=finish)
        return em.used_ops, body

    incl = combine.format(a="carry", b="gg_scan[threadIdx.x]")
    excl = f"(threadIdx.x == 0 ? carry : {combine.format(a='carry', b='gg_scan[threadIdx.x - 1]')})"
    # Every thread reads its prefix, written or not (a value computed for nothing would be
    # lost shared-memory work to the emulator's checker).
    scanned = f"      const {ct} scanned = {excl if exclusive else incl};\n"
    store = scanned + f"      if (j < j_end) out{slot}[(o * {n_size} + n) * {c_size} + c] = scanned;"
    sources, launches, scratch, used = [], [], [], set()
    grid = max(1, min(lines * chunks, REDUCTION_GRID))
    if chunks == 1:
        params, refs = _params(group, group.instrs, [(slot, ins.dtype)], [])
        ops, text = kernel(group.name, "one pass", f"    {ct} carry = {identity};", store, "", params, refs)
        used |= ops
        sources.append(text)
        launches.append(Launch(group.name, grid, BLOCK, refs))
    else:
        scratch.append((lines * chunks, ins.dtype))
        params, refs = _params(group, group.instrs, [], [(f"{ct}* __restrict__ part", ("scratch", 0))])
        ops, text = kernel(f"{group.name}_totals", "chunk totals", f"    {ct} carry = {identity};",
                           scanned + "      (void)scanned;",
                           "    if (threadIdx.x == 0) part[b] = carry;\n    __syncthreads();",
                           params, refs)
        used |= ops
        sources.append(text)
        launches.append(Launch(f"{group.name}_totals", grid, BLOCK, refs))
        params, refs = _params(group, group.instrs, [(slot, ins.dtype)],
                               [(f"const {ct}* __restrict__ part", ("scratch", 0))])
        carry = (f"    {ct} carry = {identity};\n"
                 f"    for (idx_t k = 0; k < chunk; ++k) carry = {combine.format(a='carry', b=f'part[line * {chunks} + k]')};")
        ops, text = kernel(group.name, "chunks, from the totals before them", carry, store, "", params, refs)
        used |= ops
        sources.append(text)
        launches.append(Launch(group.name, grid, BLOCK, refs))
    head = [_header(index_type), _device_functions(used, group.instrs)]
    return CudaProgram("\n".join(head + sources), launches, scratch)
