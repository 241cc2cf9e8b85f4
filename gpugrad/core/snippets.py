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


@memoize("numpy snippet functions", maxsize=None)
def numpy_function(name: str, arity: int, dtype: str):
    """The snippet as a Python function over numpy arrays; T is the operation's dtype."""
    args = ("c", "x", "y") if arity == 3 else ("x", "y")[:arity]
    prim = PRIMITIVES.get(name)
    cast = dtypes.NUMPY[dtype].type
    ns = dict(NUMPY_NAMESPACE, **(prim.numpy if prim is not None else {}), T=cast)

    def hoisted(match) -> str:
        value = np.asarray(cast(ast.literal_eval(match.group(1))))
        value.setflags(write=False)
        ns[f"_T{len(ns)}"] = value
        return f"_T{len(ns) - 1}"

    source = f"lambda {', '.join(args)}: {_CAST_NUMBER.sub(hoisted, snippet(name))}"
    try:
        return eval(compile(source, str(snippet_path(name)), "eval"), ns)
    except SyntaxError as exc:
        raise SyntaxError(f"kernel snippet {snippet_path(name)} is not a valid expression: {exc}") from exc
