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


def run_group(group, slots: list, xp) -> None:
    vals: list = []
    for ins in group.instrs:
        op = ins.op
        if op == "load":
            v = slots[ins.arg]
        elif op == "const":
            v = xp.broadcast_to(xp.asarray(ins.arg, dtype=dtypes.NUMPY[ins.dtype]), ins.shape)
        elif op in P.ELEMENTWISE:
            fn = numpy_function(op, P.ARITY[op], ins.arg)
            v = xp.asarray(fn(*(vals[s] for s in ins.srcs)), dtype=dtypes.NUMPY[ins.dtype])
        elif op == P.CAST:
            v = vals[ins.srcs[0]].astype(dtypes.NUMPY[ins.dtype])
        elif op in P.REDUCE:
            x = vals[ins.srcs[0]]
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
            v = xp.reshape(vals[ins.srcs[0]], ins.shape)
        elif op == "permute":
            v = xp.transpose(vals[ins.srcs[0]], ins.arg)
        elif op == "expand":
            v = xp.broadcast_to(vals[ins.srcs[0]], ins.shape)
        elif op == "slice":
            v = vals[ins.srcs[0]][tuple(_python_slice(*s) for s in ins.arg)]
        elif op == "unslice":
            shape, slices = ins.arg
            v = xp.zeros(shape, dtype=dtypes.NUMPY[ins.dtype])
            v[tuple(_python_slice(*s) for s in slices)] = vals[ins.srcs[0]]
        elif op == P.MATMUL:
            v = xp.matmul(vals[ins.srcs[0]], vals[ins.srcs[1]])
        else:
            raise NotImplementedError(f"backend cannot run primitive {op!r}")
        vals.append(v)
    for i, s in group.outputs:
        slots[s] = xp.asarray(vals[i], dtype=dtypes.NUMPY[group.instrs[i].dtype], order="C")
