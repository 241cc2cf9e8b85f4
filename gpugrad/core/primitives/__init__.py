"""The closed set of primitive ops, one record each (see record.py). Every public op is built
from these.

Elementwise primitives take operands of one shape (the math layer inserts explicit expand
nodes for broadcasting, so unbroadcasting is the expand rule's job alone) and their math is
the snippet ``kernels/elementwise/<name>.cu``. Reductions keep reduced axes as size 1.
The sets below are derived from the records, for the layers that dispatch on them.
"""
from __future__ import annotations

from gpugrad.core.primitives import elementwise as _elementwise, structural as _structural  # noqa: F401 - declare
from gpugrad.core.primitives.record import COMPARE, FLOAT, LOGICAL as _LOGICAL_RULE, NUMERIC, PRIMITIVES, SELECT, Primitive, declare

# NB: LOGICAL below is the set of logical primitives; the dtype rule is record.LOGICAL.


def of_kind(kind: str) -> list[Primitive]:
    return [p for p in PRIMITIVES.values() if p.kind == kind]


def elementwise() -> list[Primitive]:
    return of_kind("elementwise")


_EW = elementwise()
UNARY = tuple(p.name for p in _EW if p.arity == 1)
BINARY = tuple(p.name for p in _EW if p.arity == 2)
TERNARY = tuple(p.name for p in _EW if p.arity == 3)
ELEMENTWISE = frozenset(p.name for p in _EW)
ARITY = {p.name: p.arity for p in _EW}
COMPARISONS = frozenset(p.name for p in _EW if p.result == COMPARE)
LOGICAL = frozenset(p.name for p in _EW if p.result == _LOGICAL_RULE)
FLOAT_ONLY = frozenset(p.name for p in _EW if p.result == FLOAT)

CAST = "cast"                     # arg: target dtype; C++ static_cast / numpy astype
REDUCE = frozenset(p.name for p in of_kind("reduce"))     # arg: sorted tuple of axes
MOVEMENT = frozenset(p.name for p in of_kind("movement"))
INDEX = frozenset(p.name for p in of_kind("index"))       # gather, scatter_add
SCAN = frozenset(p.name for p in of_kind("scan"))         # cumsum, cumprod
MATMUL = "matmul"                 # (..., M, K) @ (..., K, N), equal batch dims
STOP_GRADIENT = "stop_gradient"   # identity whose derivative is disconnected
IDENTITY = "identity"             # identity whose derivative is dy (see tensor.same)
CUSTOM_GRAD = "custom_grad"       # identity in value, user-defined derivative


__all__ = ["PRIMITIVES", "Primitive", "declare", "of_kind", "elementwise",
           "FLOAT", "NUMERIC", "COMPARE", "SELECT", "UNARY", "BINARY", "TERNARY",
           "ELEMENTWISE", "ARITY", "COMPARISONS", "LOGICAL", "FLOAT_ONLY", "CAST", "REDUCE",
           "MOVEMENT", "INDEX", "SCAN", "MATMUL", "STOP_GRADIENT", "IDENTITY", "CUSTOM_GRAD"]
