"""Runs a kernel group op by op with an array module (numpy, or CuPy for matmul groups).

The elementwise math comes from the same kernels/ snippets that CUDA compiles."""
from __future__ import annotations

import builtins

from .. import dtypes
from .. import primitives as P
from ..snippets import numpy_function


def _python_slice(start: int, stop: int, step: int) -> builtins.slice:
    # range() bounds, as stored, become slice bounds: a negative stop means "past the start".
    return builtins.slice(start, stop if stop >= 0 else None, step)


def _full(v, shape: tuple, xp):
    """Constants are kept 0-d; give one its shape where the shape matters."""
    return v if v.shape == shape else xp.broadcast_to(v, shape)


def _dead_after(group) -> list:
    """For each step, the earlier values it is the last reader of: freeing them at once keeps
    few large temporaries alive, so the allocator reuses memory instead of faulting in more."""
    dead = group.cache.get("dead_after")
    if dead is None:
        last = {}
        for k, ins in enumerate(group.instrs):
            for s in ins.srcs:
                last[s] = k
        for i, _ in group.outputs:
            last[i] = len(group.instrs)
        dead = [[] for _ in group.instrs]
        for s, k in last.items():
            if k < len(group.instrs):
                dead[k].append(s)
        group.cache["dead_after"] = dead
    return dead


def run_group(group, slots: list, xp) -> None:
    vals: list = []
    dead = _dead_after(group)
    for ins in group.instrs:
        op = ins.op
        if op == "load":
            v = slots[ins.arg]
        elif op == "const":
            # a 0-d array: numpy's scalar fast paths apply; broadcast only where a shape matters
            v = xp.asarray(ins.arg, dtype=dtypes.NUMPY[ins.dtype])
        elif op in P.ELEMENTWISE:
            fn = numpy_function(op, P.ARITY[op], ins.arg)
            v = xp.asarray(fn(*(vals[s] for s in ins.srcs)), dtype=dtypes.NUMPY[ins.dtype])
        elif op == P.CAST:
            v = vals[ins.srcs[0]].astype(dtypes.NUMPY[ins.dtype])
        elif op in P.REDUCE:
            x = _full(vals[ins.srcs[0]], group.instrs[ins.srcs[0]].shape, xp)
            axes = ins.arg
            if op == "sum":
                v = xp.sum(x, axis=axes, keepdims=True, dtype=dtypes.NUMPY[ins.dtype])
            elif op == "prod":
                v = xp.prod(x, axis=axes, keepdims=True, dtype=dtypes.NUMPY[ins.dtype])
            elif op == "max":
                v = xp.max(x, axis=axes, keepdims=True) if x.size else xp.full(ins.shape, -xp.inf, x.dtype)
            else:
                v = xp.argmax(x, axis=axes[0], keepdims=True).astype(dtypes.NUMPY[ins.dtype])
        elif op == "reshape":
            v = xp.reshape(_full(vals[ins.srcs[0]], group.instrs[ins.srcs[0]].shape, xp), ins.shape)
        elif op == "permute":
            v = xp.transpose(_full(vals[ins.srcs[0]], group.instrs[ins.srcs[0]].shape, xp), ins.arg)
        elif op == "expand":
            v = xp.broadcast_to(_full(vals[ins.srcs[0]], group.instrs[ins.srcs[0]].shape, xp), ins.shape)
        elif op == "slice":
            v = _full(vals[ins.srcs[0]], group.instrs[ins.srcs[0]].shape, xp)[tuple(_python_slice(*s) for s in ins.arg)]
        elif op == "unslice":
            shape, slices = ins.arg
            v = xp.zeros(shape, dtype=dtypes.NUMPY[ins.dtype])
            v[tuple(_python_slice(*s) for s in slices)] = vals[ins.srcs[0]]  # broadcasts a const
        elif op == P.MATMUL:
            v = xp.matmul(*(_full(vals[s], group.instrs[s].shape, xp) for s in ins.srcs))
        else:
            raise NotImplementedError(f"backend cannot run primitive {op!r}")
        vals.append(v)
        for s in dead[len(vals) - 1]:
            vals[s] = None
    for i, s in group.outputs:
        ins = group.instrs[i]
        slots[s] = xp.asarray(_full(vals[i], ins.shape, xp), dtype=dtypes.NUMPY[ins.dtype], order="C")
