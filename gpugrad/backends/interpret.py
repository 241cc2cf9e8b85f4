"""Runs a kernel group with an array module (numpy; CuPy for matmul groups).

A group is turned once into a small Python function, one line per step, so that a repeated
call pays for the array operations and not for interpreting the plan. Each primitive kind has
one entry in ``EMITTERS``: a function that writes the Python expression of a step. The
elementwise math comes from the same kernels/ snippets that CUDA compiles, with everything
that can be settled when the plan is built settled then:

* a snippet that is one numpy ufunc (``x + y``, ``exp(x)``, and known shapes such as
  maximum's ``where`` form) is called as that ufunc, accepted only after it agrees bitwise with
  the snippet itself on a grid of special values (so the snippet stays the one definition);
* result dtypes are checked on sample operands, and a cast is written only where a step needs
  one;
* a temporary whose last use is a ufunc step of its own shape and dtype becomes that step's
  ``out=``, so a chain of elementwise steps reuses one buffer instead of allocating (and, for
  large arrays, page-faulting) a new one per step;
* reductions call the ufunc's ``reduce`` directly;
* an ``unslice`` (x placed into zeros) whose only reader is an ``add`` of its shape is not
  materialized: the add becomes ``other[slices] += x``, into the other operand's buffer when
  that is a dead temporary of ours. A concat (a sum of unslices), im2col and its adjoint
  col2im (convolutions, gpugrad/api/ops/conv.py) then fill one buffer instead of allocating a
  zero-filled one per piece. It is the snippet's ``x + y`` with ``y = 0`` outside the slices,
  left out (so a -0.0 there stays -0.0 where ``-0.0 + 0`` would give +0.0).
"""
from __future__ import annotations

import builtins
from typing import Callable

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core import primitives as P
from gpugrad.core.caches import memoize
from gpugrad.core.snippets import numpy_function, numpy_function_in_place, snippet
from gpugrad.backends import fp_state
from gpugrad.backends.plan_sharing import find_sharing


def _python_slice(start: int, stop: int, step: int) -> builtins.slice:
    # range() bounds, as stored, become slice bounds: a negative stop means "past the start".
    return builtins.slice(start, stop if stop >= 0 else None, step)


def _full(v, shape: tuple, xp):
    """Constants are kept 0-d (numpy's scalar fast paths apply); give one its shape where
    the shape matters."""
    return v if v.shape == shape else xp.broadcast_to(v, shape)


def _unslice(xp, v, shape, slices, dtype):
    out = xp.zeros(shape, dtype=dtype)
    out[tuple(_python_slice(*s) for s in slices)] = v  # broadcasts a constant
    return out


_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _select(c, x, y):
    """where(c, x, y) by bits: y ^ ((x ^ y) * c) over the values' unsigned-integer views. The
    same selection, bit for bit (NaN payloads and signed zeros included); np.where branches
    per element, and with an unpredictable mask that cost 8x as much (3.8 ms against 0.46 ms
    on 2^20 float32, 2x on 2^14)."""
    u = _BITS[x.dtype.itemsize]
    xb, yb = x.view(u), y.view(u)
    t = np.multiply(np.bitwise_xor(xb, yb), c)
    np.bitwise_xor(t, yb, out=t)
    return t.view(x.dtype)


def _keep_where(c, x):
    """where(c, x, +0): x's bits times c (one pass)."""
    return np.multiply(x.view(_BITS[x.dtype.itemsize]), c).view(x.dtype)


def _add_into(target, index: tuple, v):
    """target[index] += v, returning target: an add of an unslice done in place."""
    target[index] += v
    return target


def _gather(xp, x, index):
    """x (B, O, N, C) at index (B, K) along N; 0 where the index is outside [0, N)."""
    b, o, n, c = x.shape
    inside = (index >= 0) & (index < n)
    if b == 1 and bool(inside.all()):   # one row of indices, all in range: a plain take
        return xp.take(x, index.reshape(-1), axis=2)
    safe = xp.where(inside, index, 0).reshape(b, 1, -1, 1)
    return xp.where(inside.reshape(safe.shape), xp.take_along_axis(x, safe, axis=2), x.dtype.type(0))


def _scatter_add(xp, y, index, n, dtype):
    """The adjoint of _gather: y (B, O, K, C) summed into (B, O, n, C), k in increasing order."""
    b, o, k, c = y.shape
    out = xp.zeros((b, o, n, c), dtype=dtype)
    inside = (index >= 0) & (index < n)
    if b == 1 and o == 1 and bool(inside.all()):   # an embedding's gradient: rows of one table
        xp.add.at(out.reshape(n, c), index.reshape(k), y.reshape(k, c))
        return out
    rows = xp.broadcast_to(xp.arange(b).reshape(b, 1), index.shape)
    target = xp.transpose(out, (0, 2, 1, 3))         # a view: (B, n, O, C)
    xp.add.at(target, (rows[inside], index[inside]), xp.transpose(y, (0, 2, 1, 3))[inside])
    return out


def _scan(xp, x, op, exclusive, reverse, dtype):
    """cumsum or cumprod of x (O, N, C) along N. float32 accumulates in float64: a sequential
    running sum in float32 drifts by up to N rounding steps, where the generated kernel's
    (a tree within each 256, a carry across them) drifts by far fewer."""
    if reverse:
        x = x[:, ::-1]
    acc = np.float64 if np.dtype(dtype) == np.float32 else dtype
    out = (xp.cumsum if op == "cumsum" else xp.cumprod)(x, axis=1, dtype=acc).astype(dtype, copy=False)
    if exclusive:
        out = xp.concatenate([xp.full_like(out[:, :1], 0 if op == "cumsum" else 1), out[:, :-1]], axis=1)
    return xp.ascontiguousarray(out[:, ::-1] if reverse else out)


# --- ufunc forms of snippets -------------------------------------------------------------------

# Snippet text -> the numpy ufunc computing the same thing in one call.
_UFUNC_FORMS = {
    "x + y": np.add, "x - y": np.subtract, "x * y": np.multiply, "x / y": np.true_divide,
    "-x": np.negative, "exp(x)": np.exp, "log(x)": np.log, "sqrt(x)": np.sqrt, "sin(x)": np.sin,
    "cos(x)": np.cos, "tanh(x)": np.tanh, "log1p(x)": np.log1p, "expm1(x)": np.expm1,
    "abs(x)": np.absolute, "pow(x, y)": np.power, "x < y": np.less, "x <= y": np.less_equal,
    "x > y": np.greater, "x >= y": np.greater_equal, "x == y": np.equal,
    "x != y": np.not_equal, "x & y": np.bitwise_and, "x | y": np.bitwise_or,
    "T(1) / x": np.reciprocal,
    "where(x != x, x, where(x > T(0), T(1), where(x < T(0), T(-1), T(0))))": np.sign,
    "where((x > y) | (x != x), x, y)": np.maximum, "where((x < y) | (x != x), x, y)": np.minimum,
}

_SPECIAL = {
    "f": [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, np.inf, -np.inf, np.nan, 1e-30, 88.0, -88.0],
    "i": [0, 1, -1, 2, -3, 7, 2**31 - 1, -2**31],
    "b": [False, True],
}


@memoize("ufunc forms", maxsize=None)
def ufunc_form(op: str, arity: int, dtype: str):
    """The ufunc equal to op's snippet for operands of dtype, or None. Equal means bitwise
    equal results (NaN payloads aside) over every pair of special values."""
    ufunc = _UFUNC_FORMS.get(snippet(op))
    if ufunc is None or arity == 3:
        return None
    npdt = dtypes.NUMPY[dtype]
    values = np.array(_SPECIAL[npdt.kind], dtype=npdt)
    grid = [values] if arity == 1 else list(np.meshgrid(values, values))
    reference = numpy_function(op, arity, dtype)
    with np.errstate(all="ignore"):
        want, got = np.asarray(reference(*grid)), ufunc(*grid)
    if want.dtype != got.dtype or want.shape != got.shape:
        return None
    same = (want.view(np.uint8) == got.view(np.uint8)).all() if want.dtype.kind != "f" else \
        ((want == got) & (np.signbit(want) == np.signbit(got)) | (np.isnan(want) & np.isnan(got))).all()
    return ufunc if same else None


# --- the emitters --------------------------------------------------------------------------------


class _Writer:
    """The function being written: names for constants, and what is known of each value."""

    def __init__(self, group, xp):
        self.group, self.xp = group, xp
        self.ns: dict = {"xp": xp, "_full": _full, "_unslice": _unslice, "_add_into": _add_into, "np": np,
                         "_gather": _gather, "_scatter_add": _scatter_add, "_scan": _scan,
                         "_select": _select, "_keep_where": _keep_where}
        self.owned: set[int] = set()     # steps whose value is a fresh full-shape array of ours
        self.full: set[int] = set()      # steps whose value has its full (logical) shape
        self.last: dict[int, int] = {}   # step -> the step that reads it last
        self.held: dict[int, int] = {}   # step -> the last step that reads it or a view of it
        self.lines = ["def run(slots):"]
        self.pending: set[int] = set()   # unslice steps left to their one reader, an add
        self.values: dict[int, object] = {}   # steps known when the plan is built: constants

    def folded(self, k: int, value) -> str:
        """Step k is the constant value, computed now (numpy only)."""
        self.values[k] = value
        return self.const(value)

    def const(self, value) -> str:
        name = f"c{len(self.ns)}"
        self.ns[name] = value
        return name

    def full_of(self, s: int) -> str:
        return f"v{s}" if s in self.full else f"_full(v{s}, {self.group.instrs[s].shape!r}, xp)"

    def reusable(self, s: int, k: int) -> bool:
        """May step k write its result into step s's buffer? Only our own temporaries, dead
        after k, of k's shape and dtype."""
        ins, src = self.group.instrs[k], self.group.instrs[s]
        return (s in self.owned and self.held.get(s) == k and src.dtype == ins.dtype
                and src.shape == ins.shape and ins.shape != () and self.xp is np)


Emitter = Callable[[_Writer, int, object, list], str]


def _load(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    return f"slots[{ins.arg}]"


def _const(w: _Writer, k, ins, a) -> str:
    value = w.xp.asarray(ins.arg, dtype=dtypes.NUMPY[ins.dtype])
    return w.folded(k, value) if w.xp is np else w.const(value)


def _sample(w: _Writer, s: int):
    ins = w.group.instrs[s]
    dt = dtypes.NUMPY[ins.dtype]
    return np.ones(2, dt) if s in w.full else np.ones((), dt)


def _add_of_unslice(w: _Writer, k, ins, a) -> str:
    """An add one of whose operands is a pending unslice: add the unslice's source into the
    other operand's slices (its buffer when that is a dead temporary of ours, else a copy)."""
    p = next(s for s in ins.srcs if s in w.pending)
    o = ins.srcs[1] if ins.srcs[0] == p else ins.srcs[0]
    index = w.const(tuple(_python_slice(*s) for s in w.group.instrs[p].arg[1]))
    dt = w.const(dtypes.NUMPY[ins.dtype])
    if o in w.pending:   # both are: the other one is placed into zeros first
        u = w.group.instrs[o]
        target = f"_unslice(xp, v{o}, {u.arg[0]!r}, {u.arg[1]!r}, {dt})"
    elif w.reusable(o, k):
        target = f"v{o}"
    else:
        target = f"xp.array({w.full_of(o)}, dtype={dt}, order='C', copy=True)"
    w.full.add(k)
    w.owned.add(k)
    return f"_add_into({target}, {index}, v{p})"


def _elementwise(w: _Writer, k, ins, a) -> str:
    if w.pending and any(s in w.pending for s in ins.srcs):
        return _add_of_unslice(w, k, ins, a)
    arity = P.ARITY[ins.op]
    dt = dtypes.NUMPY[ins.dtype]
    is_full = any(s in w.full for s in ins.srcs)
    ufunc = ufunc_form(ins.op, arity, ins.arg)
    fn = ufunc or numpy_function(ins.op, arity, ins.arg)
    samples = [_sample(w, s) for s in ins.srcs]
    with np.errstate(all="ignore"):
        result = fn(*samples)
    sample = np.asarray(result)
    if is_full:
        w.full.add(k)
        if not any(result is x for x in samples):   # an identity snippet (copy) hands back its operand
            w.owned.add(k)
    if ins.srcs and all(s in w.values for s in ins.srcs):
        # Constant operands only (derivative rules make such steps, T(1) - T(2) * ...): the
        # same call, made once now.
        with np.errstate(all="ignore"):
            value = fn(*[w.values[s] for s in ins.srcs])
            if sample.dtype != dt:
                value = np.asarray(value, dtype=dt)
        return w.folded(k, value)
    if sample.dtype != dt:
        return f"xp.asarray({w.const(fn)}({', '.join(a)}), dtype={w.const(dt)})"
    if ins.op == "where" and w.xp is np and is_full and ins.shape != ():
        return _select_step(w, ins, a)
    if ufunc is not None and is_full:
        target = next((s for s in ins.srcs if w.reusable(s, k)), None)
        if target is not None:
            # out positionally where numpy allows it: faster to parse than the keyword (about
            # 50 ns a call); numpy 2.4 deprecates a third positional argument to maximum/minimum
            if ufunc is np.maximum or ufunc is np.minimum:
                return f"{w.const(ufunc)}({', '.join(a)}, out=v{target})"
            return f"{w.const(ufunc)}({', '.join(a)}, v{target})"
    if ufunc is None and w.xp is np and ins.shape != () and ins.arg == ins.dtype and all(
            s in w.full and w.group.instrs[s].shape == ins.shape and w.group.instrs[s].dtype == ins.dtype
            for s in ins.srcs):
        # a snippet of several ufuncs (sigmoid's four) into one array rather than one per step
        in_place = numpy_function_in_place(ins.op, arity, ins.arg)
        if in_place is not None:
            return f"{w.const(in_place)}({', '.join(a)})"
    return f"{w.const(fn)}({', '.join(a)})"


def _select_step(w: _Writer, ins, a) -> str:
    """where as a selection of bits (see _select); a +0 branch (relu's, a mask's) as one
    multiply. Both operands must already have the result's dtype."""
    c, x, y = ins.srcs
    instrs = w.group.instrs
    if instrs[x].dtype != ins.dtype or instrs[y].dtype != ins.dtype:
        return f"{w.const(numpy_function('where', 3, ins.arg))}({', '.join(a)})"
    zero = bytes(dtypes.NUMPY[ins.dtype].itemsize)
    if y in w.values and w.values[y].tobytes() == zero:
        return f"_keep_where({a[0]}, {a[1]})"
    if x in w.values and w.values[x].tobytes() == zero:
        return f"_keep_where(~{a[0]}, {a[2]})"
    return f"_select({', '.join(a)})"


def _cast(w: _Writer, k, ins, a) -> str:
    if ins.srcs[0] in w.full:
        w.full.add(k)
        w.owned.add(k)
    return f"{a[0]}.astype({w.const(dtypes.NUMPY[ins.dtype])})"


_REDUCE_UFUNC = {"sum": np.add, "prod": np.multiply, "max": np.maximum}


def _reduce(w: _Writer, k, ins, a) -> str:
    src = w.group.instrs[ins.srcs[0]]
    dt = w.const(dtypes.NUMPY[ins.dtype])
    w.full.add(k)
    w.owned.add(k)
    x = w.full_of(ins.srcs[0])
    if ins.op == "argmax":
        return f"xp.argmax({x}, axis={ins.arg[0]}, keepdims=True).astype({dt})"
    if ins.op == "max" and any(src.shape[d] == 0 for d in ins.arg):
        return f"xp.full({ins.shape!r}, -xp.inf, {dt})"      # max of nothing: the identity
    ufunc = _REDUCE_UFUNC[ins.op]
    if w.xp is not np:
        ufunc_name = {"sum": "sum", "prod": "prod", "max": "max"}[ins.op]
        extra = f", dtype={dt}" if ins.op != "max" else ""
        return f"xp.{ufunc_name}({x}, axis={ins.arg!r}, keepdims=True{extra})"
    # reduce(array, axis, dtype, out, keepdims) positionally: numpy parses positional
    # arguments faster than keywords (about 50 ns a call)
    return f"{w.const(ufunc)}.reduce({x}, {ins.arg!r}, {dt if ins.op != 'max' else None}, None, True)"


# Movement steps call the array's methods (C-level) rather than xp's functions (Python-level
# wrappers, about a microsecond each on numpy), and their results have their full shape.
def _reshape(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    return f"{w.full_of(ins.srcs[0])}.reshape({ins.shape!r})"


def _permute(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    return f"{w.full_of(ins.srcs[0])}.transpose({ins.arg!r})"


def _expand(w: _Writer, k, ins, a) -> str:
    if ins.srcs[0] in w.values:
        w.values[k] = w.values[ins.srcs[0]]
    # The value as it is, not broadcast: its rank is the result's with size-1 axes where it
    # is expanded (or it is a 0-d constant), so the elementwise steps that read it broadcast
    # it themselves, and a step that needs the full shape (a reduction, a movement, an
    # output) broadcasts it there (full_of).
    return a[0]


def _slice(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    return f"{w.full_of(ins.srcs[0])}[{w.const(tuple(_python_slice(*s) for s in ins.arg))}]"


def _unslice_step(w: _Writer, k, ins, a) -> str:
    if k in w.pending:
        return a[0]   # x itself: its one reader, an add, places it
    w.full.add(k)
    w.owned.add(k)
    return f"_unslice(xp, {a[0]}, {ins.arg[0]!r}, {ins.arg[1]!r}, {w.const(dtypes.NUMPY[ins.dtype])})"


def _gather_step(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    w.owned.add(k)
    return f"_gather(xp, {w.full_of(ins.srcs[0])}, {w.full_of(ins.srcs[1])})"


def _scatter_add_step(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    w.owned.add(k)
    return (f"_scatter_add(xp, {w.full_of(ins.srcs[0])}, {w.full_of(ins.srcs[1])}, {ins.arg}, "
            f"{w.const(dtypes.NUMPY[ins.dtype])})")


def _scan_step(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    w.owned.add(k)
    return (f"_scan(xp, {w.full_of(ins.srcs[0])}, {ins.op!r}, {ins.arg[0]}, {ins.arg[1]}, "
            f"{w.const(dtypes.NUMPY[ins.dtype])})")


def _matmul(w: _Writer, k, ins, a) -> str:
    w.full.add(k)
    w.owned.add(k)
    return f"xp.matmul({w.full_of(ins.srcs[0])}, {w.full_of(ins.srcs[1])})"


EMITTERS: dict[str, Emitter] = {
    "load": _load, "const": _const, P.CAST: _cast, "reshape": _reshape, "permute": _permute,
    "expand": _expand, "slice": _slice, "unslice": _unslice_step, P.MATMUL: _matmul,
    "gather": _gather_step, "scatter_add": _scatter_add_step,
    **{op: _scan_step for op in P.SCAN},
    **{op: _elementwise for op in P.ELEMENTWISE}, **{op: _reduce for op in P.REDUCE},
}


def _pending_unslices(group, xp) -> set[int]:
    """The unslice steps whose only reader is an add of their shape and dtype (not an output):
    _add_of_unslice places them into the add's other operand."""
    if xp is not np:
        return set()
    readers: dict[int, list[int]] = {}
    for k, ins in enumerate(group.instrs):
        for s in ins.srcs:
            readers.setdefault(s, []).append(k)
    outputs = {i for i, _ in group.outputs}
    found = set()
    for u, ins in enumerate(group.instrs):
        if ins.op != "unslice" or u in outputs or len(readers.get(u, ())) != 1:
            continue
        add = group.instrs[readers[u][0]]
        if add.op == "add" and add.shape == ins.shape and add.dtype == ins.dtype == add.arg \
                and len(add.srcs) == 2 and add.srcs[0] != add.srcs[1] \
                and ufunc_form("add", 2, add.arg) is np.add:
            found.add(u)
    return found


def compile_group(group, xp, exports: dict | None = None, imports: dict | None = None,
                  skipped: set | None = None, side_full: dict | None = None,
                  donated: set | None = None):
    """The group as a Python function of the slot list. With a plan's sharing
    (plan_sharing.find_sharing): ``imports`` {step: side slot} are read from the slot list
    instead of computed, ``skipped`` steps (needed only by those) are left out, ``exports``
    are put into their side slots; ``side_full`` records, exporter to importer, which
    side values have their full shape; the buffers of ``donated`` slots are the group's own
    temporaries (no later group reads them)."""
    exports, imports, skipped, donated = exports or {}, imports or {}, skipped or set(), donated or set()
    w = _Writer(group, xp)
    for k, ins in enumerate(group.instrs):
        if k in skipped or k in imports:
            continue
        for s in ins.srcs:
            w.last[s] = k
    for i, _ in group.outputs:
        w.last[i] = len(group.instrs)
    for i in exports:   # a later group reads it: never an out= target, never deleted here
        w.last[i] = len(group.instrs)
    w.pending = _pending_unslices(group, xp)
    # A movement step (reshape, transpose, broadcast, slice) may be a view of its source: the
    # source's buffer stays in use while the view does, so it is no out= target until then.
    w.held = dict(w.last)
    for k in range(len(group.instrs) - 1, -1, -1):
        ins = group.instrs[k]
        if ins.op in P.MOVEMENT and k in w.held:
            s = ins.srcs[0]
            w.held[s] = max(w.held.get(s, -1), w.held[k])
    for k, ins in enumerate(group.instrs):
        if k in skipped:
            continue
        if k in imports:
            if side_full[imports[k]]:
                w.full.add(k)
            w.lines.append(f"    v{k} = slots[{imports[k]}]")
            continue
        emit = EMITTERS.get(ins.op)
        if emit is None:
            raise NotImplementedError(f"the numpy backend has no emitter for primitive {ins.op!r}")
        w.lines.append(f"    v{k} = {emit(w, k, ins, [f'v{s}' for s in ins.srcs])}")
        if ins.op == "load" and ins.arg in donated:
            w.owned.add(k)
        if k in exports:
            side_full[exports[k]] = k in w.full
            w.lines.append(f"    slots[{exports[k]}] = v{k}")
        # free temporaries at their last use: the allocator then reuses their memory
        dead = [f"v{s}" for s in set(ins.srcs) if w.last.get(s) == k]
        if dead:
            w.lines.append(f"    del {', '.join(dead)}")
    steps = w.lines[1:]
    results = []   # (slot, the expression of the array handed out in it)
    written = set()
    for i, s in group.outputs:
        ins = group.instrs[i]
        dt = w.const(dtypes.NUMPY[ins.dtype])
        if i in w.owned and i not in written and ins.shape != ():   # rank 0: a numpy scalar
            # our own fresh array: hand it out as it is (one output per buffer); a ufunc over
            # transposed operands may have made it in Fortran order
            written.add(i)
            if sum(d > 1 for d in ins.shape) <= 1:
                # at most one axis longer than 1: any fresh (compact) array of this shape is
                # C-contiguous, and so is a donated buffer (an earlier group handed it out so)
                results.append((s, f"v{i}"))
            else:
                results.append((s, f"v{i} if v{i}.flags.c_contiguous else xp.ascontiguousarray(v{i})"))
        else:
            # an input, a view of one, a constant or a value already handed out: copy
            results.append((s, f"xp.array({w.full_of(i)}, dtype={dt}, order='C', copy=True)"))
    w.lines += [f"    slots[{s}] = {value}" for s, value in results]
    source = "\n".join(w.lines)
    exec(compile(source, f"<gpugrad group {group.name}>", "exec"), w.ns)
    fn = w.ns["run"]
    fn.source = source   # for explain() and the tests
    fn.parts = (steps, results)   # for _whole_plan_function
    return fn


def run_plan(plan, slots: list, run_group: Callable) -> list:
    """The one plan-run loop of every backend: run each group over the slot list (inputs
    first, then every stored value), dropping each slot after its last reader, and return the
    outputs in their shapes. ``slots`` holds the adopted inputs."""
    slots += [None] * (len(plan.slot_specs) - len(slots))
    for group, dead in zip(plan.groups, plan.free_after):
        run_group(group, slots)
        for s in dead:
            slots[s] = None
    return [slots[s] if slots[s].shape == shape else slots[s].reshape(shape)
            for s, shape in plan.outputs]


def compile_plan(plan, group_fns: list, sharing=None, shapes: dict | None = None,
                 ignoring_fp_errors: bool = False) -> Callable[[list], list]:
    """run_plan(plan, slots, ...) as one generated function of the adopted inputs, given a
    callable of the slot list for each group: the loop, the slot releases and the output
    list written out, so a cached call pays one Python call per group and nothing per slot.
    With a sharing (see compile_shared_plan), its side slots follow the plan's. ``shapes``
    {slot: shape}: the shapes the group functions are known to write, so that an output's
    reshape is settled here rather than tested per call. ``ignoring_fp_errors``: the function
    runs with numpy's floating-point errors ignored (fp_state)."""
    shapes = shapes or {}
    n_side = sharing.n_side if sharing is not None else 0
    ns = {f"g{k}": fn for k, fn in enumerate(group_fns)}
    ns["_pad"] = [None] * (len(plan.slot_specs) - plan.n_inputs + n_side)
    # (a list of its own: the caller's list of inputs stays as it was)
    lines = ["def run(slots):", "    slots = slots + _pad"]
    for k, dead in enumerate(plan.free_after if sharing is None else sharing.free_after):
        lines.append(f"    g{k}(slots)")
        for s in dead:
            lines.append(f"    slots[{s}] = None")
    outs = []
    for k, (s, shape) in enumerate(plan.outputs):
        ns[f"s{k}"] = shape
        if s not in shapes:
            lines.append(f"    o{k} = slots[{s}]")
            outs.append(f"o{k} if o{k}.shape == s{k} else o{k}.reshape(s{k})")
        elif shapes[s] == shape:
            outs.append(f"slots[{s}]")
        else:   # a reduction's kept axes: (1,) for a scalar
            outs.append(f"slots[{s}].reshape(s{k})")
    lines.append(f"    return [{', '.join(outs)}]")
    if ignoring_fp_errors:
        lines = fp_state.wrapped_source(lines[0], lines[1:])
        ns.update(fp_state.NAMESPACE)
    source = "\n".join(lines)
    exec(compile(source, "<gpugrad plan>", "exec"), ns)
    ns["run"].source = source
    return ns["run"]


def _whole_plan_function(plan, fn) -> Callable[[list], list] | None:
    """A plan of one group as one function of the inputs: the group function's steps, then
    the plan's outputs returned, with no slot list and no second call (for a small graph
    about 0.25 us of a 2.5 us run), with numpy's floating-point errors ignored. None where an
    output is not the group's (an input passed through): compile_plan then."""
    steps, results = fn.parts
    group = plan.groups[0]
    shapes = {s: group.instrs[i].shape for i, s in group.outputs}
    if any(s not in shapes for s, _ in plan.outputs):
        return None
    lines = ["def run(slots):", *steps]   # (loads of the inputs only: no other slot is filled)
    names = {}
    for s, value in results:
        if value.isidentifier():
            names[s] = value
        else:
            lines.append(f"    o{s} = {value}")
            names[s] = f"o{s}"
    # shapes as literals: a constant tuple costs nothing to load
    outs = [names[s] if shapes[s] == shape else f"{names[s]}.reshape({shape!r})" for s, shape in plan.outputs]
    lines.append(f"    return [{', '.join(outs)}]")
    lines = fp_state.wrapped_source(lines[0], lines[1:])
    source = "\n".join(lines)
    ns = dict(fn.__globals__)   # the group's constants
    ns.update(fp_state.NAMESPACE)
    exec(compile(source, f"<gpugrad plan of {group.name}>", "exec"), ns)
    ns["run"].source = source
    return ns["run"]


def compile_shared_plan(plan, xp=np) -> Callable[[list], list]:
    """compile_plan over group functions that hand each other the values two groups would
    both compute, and write into buffers no later group reads (plan_sharing): numpy only,
    where a recomputed value costs a call again and a fresh large array its page faults.
    A plan of one group is one function (_whole_plan_function). It runs with numpy's
    floating-point errors ignored (NaN and Inf flow through as IEEE values)."""
    if len(plan.groups) == 1 and xp is np:
        whole = _whole_plan_function(plan, group_function(plan.groups[0], xp))
        if whole is not None:
            return whole
    sharing = find_sharing(plan)
    side_full: dict[int, bool] = {}
    fns = []
    for g, group in enumerate(plan.groups):
        if sharing.exports[g] or sharing.imports[g] or sharing.donated[g]:
            fns.append(compile_group(group, xp, sharing.exports[g], sharing.imports[g],
                                     sharing.skipped[g], side_full, sharing.donated[g]))
        else:
            fns.append(group_function(group, xp))
    # what compile_group writes into an output slot has the step's shape
    shapes = {s: group.instrs[i].shape for group in plan.groups for i, s in group.outputs}
    return compile_plan(plan, fns, sharing, shapes, ignoring_fp_errors=xp is np)


def group_function(group, xp) -> Callable[[list], None]:
    """The group's compiled Python function (made once, kept in group.cache)."""
    key = ("python", xp.__name__)
    fn = group.cache.get(key)
    if fn is None:
        fn = group.cache[key] = compile_group(group, xp)
    return fn


def run_group(group, slots: list, xp) -> None:
    key = ("python", xp.__name__)
    fn = group.cache.get(key)
    if fn is None:
        fn = group.cache[key] = compile_group(group, xp)
    fn(slots)
