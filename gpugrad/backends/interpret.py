"""Runs a kernel group with an array module (numpy; CuPy for matmul groups).

A group is turned once into a small Python function, one line per step, so that a repeated
call pays for the array operations and not for interpreting the plan. The elementwise math
comes from the same kernels/ snippets that CUDA compiles.
"""
from __future__ import annotations

import builtins

from .. import dtypes
from .. import primitives as P
from ..snippets import numpy_function


def _python_slice(start: int, stop: int, step: int) -> builtins.slice:
    # range() bounds, as stored, become slice bounds: a negative stop means "past the start".
    return builtins.slice(start, stop if stop >= 0 else None, step)


def _full(v, shape: tuple, xp):
    """Constants are kept 0-d (numpy's scalar fast paths apply); give one its shape where
    the shape matters."""
    return v if v.shape == shape else xp.broadcast_to(v, shape)


def _reduce(xp, op, x, axes, dtype, shape):
    if op == "sum":
        return xp.sum(x, axis=axes, keepdims=True, dtype=dtype)
    if op == "prod":
        return xp.prod(x, axis=axes, keepdims=True, dtype=dtype)
    if op == "max":
        return xp.max(x, axis=axes, keepdims=True) if x.size else xp.full(shape, -xp.inf, x.dtype)
    return xp.argmax(x, axis=axes[0], keepdims=True).astype(dtype)


def _unslice(xp, v, shape, slices, dtype):
    out = xp.zeros(shape, dtype=dtype)
    out[tuple(_python_slice(*s) for s in slices)] = v  # broadcasts a constant
    return out


def compile_group(group, xp):
    """The group as a Python function of the slot list."""
    ns = {"xp": xp, "_full": _full, "_reduce": _reduce, "_unslice": _unslice}
    lines = ["def run(slots):"]
    last: dict[int, int] = {}
    for k, ins in enumerate(group.instrs):
        for s in ins.srcs:
            last[s] = k
    for i, _ in group.outputs:
        last[i] = len(group.instrs)

    def const(value):
        name = f"c{len(ns)}"
        ns[name] = value
        return name

    def full(s):  # operand s with its full shape
        return f"_full(v{s}, {group.instrs[s].shape!r}, xp)"

    for k, ins in enumerate(group.instrs):
        op, dt = ins.op, const(dtypes.NUMPY[ins.dtype])
        a = [f"v{s}" for s in ins.srcs]
        if op == "load":
            expr = f"slots[{ins.arg}]"
        elif op == "const":
            expr = const(xp.asarray(ins.arg, dtype=dtypes.NUMPY[ins.dtype]))
        elif op in P.ELEMENTWISE:
            fn = const(numpy_function(op, P.ARITY[op], ins.arg))
            expr = f"xp.asarray({fn}({', '.join(a)}), dtype={dt})"
        elif op == P.CAST:
            expr = f"{a[0]}.astype({dt})"
        elif op in P.REDUCE:
            expr = f"_reduce(xp, {op!r}, {full(ins.srcs[0])}, {ins.arg!r}, {dt}, {ins.shape!r})"
        elif op == "reshape":
            expr = f"xp.reshape({full(ins.srcs[0])}, {ins.shape!r})"
        elif op == "permute":
            expr = f"xp.transpose({full(ins.srcs[0])}, {ins.arg!r})"
        elif op == "expand":
            expr = f"xp.broadcast_to({full(ins.srcs[0])}, {ins.shape!r})"
        elif op == "slice":
            expr = f"{full(ins.srcs[0])}[{const(tuple(_python_slice(*s) for s in ins.arg))}]"
        elif op == "unslice":
            expr = f"_unslice(xp, {a[0]}, {ins.arg[0]!r}, {ins.arg[1]!r}, {dt})"
        elif op == P.MATMUL:
            expr = f"xp.matmul({full(ins.srcs[0])}, {full(ins.srcs[1])})"
        else:
            raise NotImplementedError(f"backend cannot run primitive {op!r}")
        lines.append(f"    v{k} = {expr}")
        # free temporaries at their last use: the allocator then reuses their memory
        dead = [f"v{s}" for s in set(ins.srcs) if last.get(s) == k]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    for i, s in group.outputs:
        ins = group.instrs[i]
        lines.append(f"    slots[{s}] = xp.asarray({full(i)}, dtype={const(dtypes.NUMPY[ins.dtype])}, order='C')")
        if ins.op in ("load", "copy") or ins.op in P.MOVEMENT:
            # never hand out a view of an input as an output
            lines[-1] = lines[-1].replace("xp.asarray(", "xp.array(").replace("order='C')", "order='C', copy=True)")
    exec(compile("\n".join(lines), f"<gpugrad group {group.name}>", "exec"), ns)
    return ns["run"]


def run_group(group, slots: list, xp) -> None:
    key = ("python", xp.__name__)
    fn = group.cache.get(key)
    if fn is None:
        fn = group.cache[key] = compile_group(group, xp)
    fn(slots)
