"""Optimizer update rules (kernels/optim/*.cu): parsing, the numpy function of a rule, and the
generated multi-tensor CUDA kernel. The math of each update exists once, in its snippet file.

A rule file holds a few statements ``name = expression;``, one per line, in the grammar of
the elementwise snippets (valid C++ and valid Python: math functions, + - * /, comparisons,
``where(c, a, b)``, literals only as ``T(1)`` casts). The names are per-element values:
``w`` (the parameter), ``g`` (its gradient), the optimizer's state (declared by the Python
optimizer, e.g. ``m``, ``v``), temporaries (assigned before use) and scalar hyperparameters
passed each step (every other name, e.g. ``lr``). Assigning ``w`` or a state name updates it in
place; the host computes step-dependent scalars (bias corrections), so one compiled kernel
serves every step.

The CUDA kernel updates every variable of one dtype in ONE launch (multi-tensor apply): a
device array ``meta`` carries one pointer table per role (w, g, each state) and the prefix sum
of the tensors' sizes; each thread grid-strides over the concatenated index space and finds
its tensor (a binary search once, then a forward walk). Assigning whole blocks to tensors
instead would need a per-step block table; the flat walk needs only the offsets and keeps
every thread busy whatever the mix of tensor sizes.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Callable, Mapping, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.core.caches import memoize
from gpugrad.compile.codegen import BLOCK, TARGET_BLOCKS, Launch
from gpugrad.core.snippets import NUMPY_NAMESPACE, kernels_dir, template

_STATEMENT = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.+);$")
# Names of the generated code that per-element names must not shadow.
_RESERVED = re.compile(r"^(gg_\w*|T|meta|n_tensors|total)$")
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd, ast.BitAnd, ast.BitOr,
              ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def _functions() -> set[str]:
    """The math functions of the snippet grammar: those the numpy namespace binds."""
    return {n for n in NUMPY_NAMESPACE if not n.startswith("__")} | {"T"}


@dataclass(frozen=True)
class UpdateRule:
    """A parsed kernels/optim/<name>.cu."""
    name: str
    path: str
    statements: tuple          # ((target, expression), ...) in order
    state: tuple               # state names, read and written in place, in declared order
    scalars: tuple             # per-step host scalars, in order of first use
    temps: tuple = ()             # names assigned that are neither w nor state

    @property
    def roles(self) -> tuple:
        """The per-element arrays of one variable, in kernel order."""
        return ("w", "g") + self.state


def rule_path(name: str) -> Path:
    return kernels_dir() / "optim" / f"{name}.cu"


@memoize("update rules", maxsize=None)
def load_rule(name: str, state: tuple = ()) -> UpdateRule:
    """Parse and check kernels/optim/<name>.cu for an optimizer whose state names are state."""
    path = rule_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no update rule {name!r}: {path} does not exist")
    where = f"update rule {path}"
    functions = _functions()
    known = {"w", "g", *state}
    statements, temps, scalars, assigned = [], [], [], set()
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("//")[0].strip()
        if not line:
            continue
        m = _STATEMENT.match(line)
        if not m:
            raise SyntaxError(f"{where} line {number}: expected 'name = expression;', got {line!r}")
        target, expr = m.group(1), m.group(2).strip()
        for name_ in _names_read(expr, functions, f"{where} line {number}"):
            if name_ not in known and name_ not in assigned and name_ not in scalars:
                scalars.append(name_)   # neither an array nor assigned yet: a host scalar
        if target == "g" or target in scalars:
            raise SyntaxError(f"{where} line {number}: {target!r} is an input and cannot be assigned")
        if target not in known and target not in temps:
            temps.append(target)
        assigned.add(target)
        statements.append((target, expr))
    for name_ in ("w", *state):
        if name_ not in assigned:
            raise SyntaxError(f"{where}: {name_!r} is never assigned (the rule must update w and "
                              f"every state: {', '.join(('w',) + tuple(state))})")
    for name_ in ("w", "g", *state, *temps, *scalars):
        if _RESERVED.match(name_) or name_ in functions:
            raise SyntaxError(f"{where}: the name {name_!r} is reserved by the generated code")
    return UpdateRule(name, str(path), tuple(statements), tuple(state), tuple(scalars), tuple(temps))


def _names_read(expr: str, functions: set, where: str) -> list[str]:
    """The value names an expression reads, checking it keeps to the shared C++/Python grammar."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise SyntaxError(f"{where}: {expr!r} is not a valid expression ({exc.msg})") from None
    names: list[str] = []

    def visit(node, literal_ok=False):
        if isinstance(node, ast.Expression):
            visit(node.body)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _OPERATORS):
            visit(node.operand, literal_ok)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], _OPERATORS):
            visit(node.left)
            visit(node.comparators[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id not in functions:
                raise SyntaxError(f"{where}: unknown function {node.func.id!r} "
                                  f"(the grammar has {', '.join(sorted(functions))})")
            for arg in node.args:
                visit(arg, node.func.id == "T")
        elif isinstance(node, ast.Name):
            if node.id not in names:
                names.append(node.id)
        elif isinstance(node, ast.Constant) and literal_ok and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            pass
        else:
            # Bare literals are double in C++ but follow the array's dtype in numpy: write T(0.5).
            raise SyntaxError(f"{where}: {ast.unparse(node)!r} is outside the snippet grammar "
                              "(math calls, + - * /, one comparison, where(c, a, b), literals as T(x))")
    visit(tree)
    return names


# --- numpy ---------------------------------------------------------------------------------------


@memoize("numpy update functions", maxsize=None)
def numpy_update(rule: UpdateRule, dtype: str) -> Callable[..., tuple]:
    """The rule as a Python function of (w, g, *state, *scalars) over numpy arrays, returning
    the new (w, *state); the caller writes them back in place."""
    args = rule.roles + rule.scalars
    body = "".join(f"    {target} = {expr}\n" for target, expr in rule.statements)
    source = f"def update({', '.join(args)}):\n{body}    return ({', '.join(('w',) + rule.state)},)\n"
    ns = dict(NUMPY_NAMESPACE, T=dtypes.NUMPY[dtype].type)
    exec(compile(source, rule.path, "exec"), ns)
    return ns["update"]


_IN_PLACE_BINARY = {ast.Add: "_add", ast.Sub: "_subtract", ast.Mult: "_multiply", ast.Div: "_divide"}
_IN_PLACE_CALLS = {"sqrt", "exp", "log", "sin", "cos", "tanh", "log1p", "expm1", "abs"}


@memoize("numpy in-place update functions", maxsize=None)
def numpy_update_in_place(rule: UpdateRule, dtype: str) -> Callable[..., None]:
    """The rule as a Python function of (w, g, *state, *scalars) over numpy arrays that
    updates w and the states in place: each statement's last operation writes into its target
    (``out=``), so no new array is made for it and none is copied back, and its inner
    arithmetic on arrays writes into a few scratch arrays made once per call (the same memory
    again and again: a new array per operation cost 15% of an Adam step on a 256x256
    variable). The same operations in the same order as numpy_update, so the same values bit
    for bit."""
    args = rule.roles + rule.scalars
    roles = set(("w",) + rule.state)
    writer = _InPlaceWriter(set(rule.roles))
    body = []
    for target, expr in rule.statements:
        node = ast.parse(expr, mode="eval").body
        if target not in roles:
            body.append(f"    {target} = {expr}")
            writer.arrays.add(target)   # (a temporary of the rule: a fresh array, read later)
        elif writer.computable(node):
            writer.emit(node, body, out=target)
        else:
            body.append(f"    {target}[...] = {expr}")
    lines = [f"def update({', '.join(args)}):"]
    lines += [f"    s{k} = _empty_like(w)" for k in range(writer.scratch)]
    source = "\n".join(lines + body) + "\n"
    ns = dict(NUMPY_NAMESPACE, T=dtypes.NUMPY[dtype].type, _add=np.add, _subtract=np.subtract,
              _multiply=np.multiply, _divide=np.true_divide, _empty_like=np.empty_like)
    exec(compile(source, rule.path, "exec"), ns)
    ns["update"].source = source
    return ns["update"]


class _InPlaceWriter:
    """Writes a statement's array arithmetic (+ - * / and one-argument math calls, whose
    result has the operands' dtype) as ufunc calls into scratch arrays s0, s1, ...: an
    operation's result takes the scratch of an operand it consumes, else a free one.
    Everything else (numbers, T(1) - b1, comparisons, where) stays an expression as written."""

    def __init__(self, arrays: set):
        self.arrays = arrays    # names bound to arrays
        self.scratch = 0        # how many scratch arrays the function makes
        self.free: list = []

    def is_array(self, node) -> bool:
        return any(isinstance(n, ast.Name) and n.id in self.arrays for n in ast.walk(node))

    def computable(self, node) -> bool:
        """An array operation this writer does into an ``out``."""
        if isinstance(node, ast.BinOp):
            return type(node.op) in _IN_PLACE_BINARY and self.is_array(node)
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _IN_PLACE_CALLS and len(node.args) == 1 and self.is_array(node)

    def emit(self, node, body: list, out: str | None = None) -> str:
        """Append the calls computing node; return the expression naming its value."""
        if not self.computable(node):
            return f"({ast.unparse(node)})"
        operands = [node.left, node.right] if isinstance(node, ast.BinOp) else node.args
        names = [self.emit(o, body) for o in operands]
        for name in names:   # consumed: their scratch is free again
            if name.startswith("s") and name[1:].isdigit():
                self.free.append(name)
        if out is None:
            if not self.free:
                self.free.append(f"s{self.scratch}")
                self.scratch += 1
            out = self.free.pop()
        fn = _IN_PLACE_BINARY[type(node.op)] if isinstance(node, ast.BinOp) else node.func.id
        body.append(f"    {fn}({', '.join(names)}, out={out})")
        return out


# --- CUDA ----------------------------------------------------------------------------------------


class UpdateProgram:
    """The generated kernel of one rule and dtype, and how to pass it its arguments.

    ``launches`` mirrors codegen.CudaProgram so that a backend's compile path (and its error
    messages) work unchanged; ``cache`` is for an executor's per-program state."""

    __slots__ = ("rule", "dtype", "source", "kernel", "launches", "block", "cache")

    def __init__(self, rule: UpdateRule, dtype: str, source: str, kernel: str):
        self.rule, self.dtype, self.source, self.kernel = rule, dtype, source, kernel
        self.block = BLOCK
        self.launches = [Launch(kernel, 0, BLOCK, [])]
        self.cache: dict = {}

    def grid(self, total: int) -> int:
        return max(1, min(-(-total // BLOCK), TARGET_BLOCKS * 4))

    def pack(self, addresses: Sequence[Sequence[int]], sizes: Sequence[int]) -> np.ndarray:
        """meta: one table of addresses per role (rule.roles order), then the size prefix sums."""
        if len(addresses) != len(self.rule.roles) or any(len(a) != len(sizes) for a in addresses):
            raise ValueError(f"{self.kernel} needs {len(self.rule.roles)} address tables "
                             f"({', '.join(self.rule.roles)}) of one entry per tensor")
        offsets = np.concatenate(([0], np.cumsum(sizes, dtype=np.uint64)))
        flat = [a for table in addresses for a in table]
        return np.concatenate((np.array(flat, dtype=np.uint64), offsets.astype(np.uint64))).view(np.int64)

    def scalar_args(self, values: Mapping[str, float]) -> list:
        """The scalar kernel arguments, in order, typed as the kernel's T."""
        t = dtypes.NUMPY[self.dtype].type
        missing = [s for s in self.rule.scalars if s not in values]
        if missing:
            raise KeyError(f"{self.rule.path} needs the scalars {', '.join(missing)}")
        return [t(values[s]) for s in self.rule.scalars]


@memoize("update kernels", maxsize=None)
def generate(rule: UpdateRule, dtype: str) -> UpdateProgram:
    """The multi-tensor CUDA kernel of rule for variables of dtype (float32 or float64)."""
    if dtype not in dtypes.FLOATS:
        raise TypeError(f"update kernels are generated for float32 and float64, not {dtype}")
    name = f"gg_optim_{rule.name}_{dtypes.CUDA[dtype]}"
    roles = rule.roles
    tables, loads, stores = [], [], []
    for k, role in enumerate(roles):
        const = "const " if role == "g" else ""
        offset = f" + {k} * (long long)n_tensors" if k else ""
        tables.append(f"  {const}T* const* const gg_{role} = "
                      f"reinterpret_cast<{const}T* const*>(meta{offset});")
        loads.append(f"    {const}T {role} = gg_{role}[gg_k][gg_j];")
        if role != "g":
            stores.append(f"    gg_{role}[gg_k][gg_j] = {role};")
    body, declared = [], set(roles)
    for target, expr in rule.statements:
        decl = "" if target in declared else "T "
        declared.add(target)
        body.append(f"    {decl}{target} = {expr};")
    kernel = Template(template("optim")).substitute(
        name=name, ctype=dtypes.CUDA[dtype], block=BLOCK, n_roles=len(roles), roles=", ".join(roles),
        scalar_params="".join(f", const T {s}" for s in rule.scalars), tables="\n".join(tables),
        loads="\n".join(loads), body="\n".join(body), stores="\n".join(stores))
    # The origin comment lets cuda_check name the rule file behind a compile error.
    source = "\n".join((f"// kernels/optim/{rule.name}.cu", template("prelude"), kernel))
    return UpdateProgram(rule, dtype, source, name)
