"""The kernel snippets under kernels/: one expression per elementwise primitive.

A snippet is a single expression over the operands ``x``, ``y`` (and ``c`` for where) in a
grammar that is both valid C++ and valid Python: calls to math functions (exp, log, ...),
arithmetic, comparisons, ``where(c, a, b)`` and casts written ``T(1)`` where T is the
operation's dtype. CUDA compiles it inside a templated device function; the numpy backend
evaluates the same text with numpy functions bound to those names. So the math of each
primitive exists once.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core.caches import memoize
from gpugrad.core.primitives.record import PRIMITIVES


def kernels_dir() -> Path:
    """kernels/ beside the package in a checkout, or installed inside it by pip."""
    package = Path(__file__).resolve().parent.parent   # gpugrad/ (this file is gpugrad/core/)
    for candidate in (package.parent / "kernels", package / "kernels"):
        if (candidate / "elementwise").is_dir():
            return candidate
    raise FileNotFoundError(
        f"gpugrad's kernel snippets were not found beside {package}: reinstall the package "
        "(pip install gpugrad) so that its kernels/ folder is present.")


def snippet_path(name: str) -> Path:
    return kernels_dir() / "elementwise" / f"{name}.cu"


@memoize("snippets", maxsize=None)
def snippet(name: str) -> str:
    """The expression of an elementwise primitive, comments stripped."""
    path = snippet_path(name)
    lines = [ln.split("//")[0].strip() for ln in path.read_text().splitlines()]
    expr = " ".join(ln for ln in lines if ln)
    if not expr:
        raise ValueError(f"kernel snippet {path} holds no expression")
    return expr


@memoize("templates", maxsize=None)
def template(name: str) -> str:
    """A kernel template, headed by a marker naming its file: compile errors, resource
    reports and the emulator's checker trace generated code back to it."""
    return f"// kernels/templates/{name}.cu\n" + (kernels_dir() / "templates" / f"{name}.cu").read_text()


def _rsqrt(x):
    return np.reciprocal(np.sqrt(x))


NUMPY_NAMESPACE = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": _rsqrt, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "log1p": np.log1p, "expm1": np.expm1,
    "pow": np.power, "where": np.where, "abs": np.absolute, "__builtins__": {},
}


# A cast of a number, T(1): made once per function, as a read-only 0-d array. numpy takes a
# 0-d array operand faster than a scalar, and building the scalar per call cost a third of a
# small call of sigmoid's snippet; the values and result dtypes are the scalar's.
_CAST_NUMBER = re.compile(r"\bT\((-?[0-9][0-9.eE+-]*)\)")


def _numpy_source(name: str, arity: int, dtype: str) -> tuple[tuple, str, dict]:
    """(the argument names, the snippet with its T(number) casts hoisted, the namespace it
    evaluates in over numpy arrays)."""
    args = ("c", "x", "y") if arity == 3 else ("x", "y")[:arity]
    prim = PRIMITIVES.get(name)
    cast = dtypes.NUMPY[dtype].type
    ns = dict(NUMPY_NAMESPACE, **(prim.numpy if prim is not None else {}), T=cast)

    def hoisted(match) -> str:
        value = np.asarray(cast(ast.literal_eval(match.group(1))))
        value.setflags(write=False)
        ns[f"_T{len(ns)}"] = value
        return f"_T{len(ns) - 1}"
    return args, _CAST_NUMBER.sub(hoisted, snippet(name)), ns


@memoize("numpy snippet functions", maxsize=None)
def numpy_function(name: str, arity: int, dtype: str):
    """The snippet as a Python function over numpy arrays; T is the operation's dtype."""
    args, expr, ns = _numpy_source(name, arity, dtype)
    source = f"lambda {', '.join(args)}: {expr}"
    try:
        return eval(compile(source, str(snippet_path(name)), "eval"), ns)
    except SyntaxError as exc:
        raise SyntaxError(f"kernel snippet {snippet_path(name)} is not a valid expression: {exc}") from exc


_IN_PLACE_OPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
                 ast.Div: np.true_divide}


@memoize("in-place numpy snippet functions", maxsize=None)
def numpy_function_in_place(name: str, arity: int, dtype: str):
    """numpy_function's result, computed into one array: the first step's result takes every
    later step's (ufunc(a, b, out)), not an array per step. The same ufuncs in the same order,
    so the same bits; for operands of the result's shape (not 0-d: numpy hands back scalars
    there) and a float dtype, whose steps all keep it. None where the snippet has a step that
    is not such a ufunc (a comparison, where, a Python-level helper) or no step at all."""
    if not dtypes.is_float(dtype):
        return None
    args, expr, ns = _numpy_source(name, arity, dtype)
    lines, temps = [], []

    def step(node) -> tuple[str, bool] | None:   # (the expression, whether it is a temporary)
        if isinstance(node, ast.Name) and (node.id in args or node.id.startswith("_T")):
            return node.id, False
        if isinstance(node, ast.BinOp) and type(node.op) in _IN_PLACE_OPS:
            ufunc, operands = _IN_PLACE_OPS[type(node.op)], [node.left, node.right]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            ufunc, operands = np.negative, [node.operand]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords \
                and isinstance(ns.get(node.func.id), np.ufunc) and ns[node.func.id].nout == 1:
            ufunc, operands = ns[node.func.id], node.args
        else:
            return None
        parts = [step(o) for o in operands]
        if any(p is None for p in parts):
            return None
        name_of = f"_u{len(ns)}"
        ns[name_of] = ufunc
        call = ", ".join(p[0] for p in parts)
        into = next((p[0] for p in parts if p[1]), None)
        if into is not None:   # a temporary of ours, dead after this step: written over
            lines.append(f"    {name_of}({call}, {into})")
            return into, True
        temps.append(f"t{len(temps)}")
        lines.append(f"    {temps[-1]} = {name_of}({call})")
        return temps[-1], True

    root = step(ast.parse(expr, mode="eval").body)
    if root is None or not root[1]:
        return None
    source = "\n".join([f"def run({', '.join(args)}):", *lines, f"    return {root[0]}"])
    exec(compile(source, str(snippet_path(name)), "exec"), ns)
    ns["run"].source = source
    return ns["run"]
