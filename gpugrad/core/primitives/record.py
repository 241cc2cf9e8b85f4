"""The Primitive record and the registry every layer reads.

A primitive is declared once (gpugrad/core/primitives/elementwise.py, structural.py) with all that
is known of it: its kind and arity, its dtype rule, the snippet holding its math, the names
that snippet needs from numpy, its derivative rule, an independent float64 reference and the
domain its tests sample. The op functions, the Tensor methods, the TF.js camelCase names, the
numpy backend's bindings and the test tables are derived from these records.

Derivative rules are written over the math layer (gpugrad/compile/lax.py) and receive it as their first
argument, ``rule(L, node, dy) -> one cotangent per operand (or None)``: so this layer, at the
bottom of the package, imports nothing above it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

# Dtype rules of elementwise primitives (the compute dtype is the operands' promoted dtype):
FLOAT = "float"        # int and bool operands become float32 first (exp, div, ...)
NUMERIC = "numeric"    # bool operands become int32 (add, abs, ...)
COMPARE = "compare"    # numeric compute dtype, bool result (less, equal, ...)
LOGICAL = "logical"    # bool operands and result (logical_and, ...)
SELECT = "select"      # where(condition, x, y): bool condition, x and y promoted
RESULT_RULES = (FLOAT, NUMERIC, COMPARE, LOGICAL, SELECT)

KINDS = ("elementwise", "cast", "reduce", "movement", "matmul", "identity", "index", "scan")

VJP = Callable[..., tuple]


@dataclass(eq=False)
class Primitive:
    name: str
    kind: str
    arity: int
    vjp: Optional[VJP] = None          # rule(L, node, dy)
    result: str = NUMERIC              # elementwise dtype rule, one of RESULT_RULES
    snippet: Optional[str] = None      # kernels/elementwise/<snippet>.cu (elementwise only)
    numpy: dict = field(default_factory=dict)   # names the snippet uses -> numpy callables
    reference: Optional[Callable] = None        # float64 numpy reference, for tests
    domain: Optional[tuple] = None     # ((lo, hi), ...) per operand, for tests
    smooth: bool = True                # second derivatives are checked
    public: bool = True                # derive tf.<name> and Tensor.<name>
    tfjs: Optional[str] = None         # TF.js's name where it is not the camelCase of name
    doc: str = ""

    def __repr__(self) -> str:
        return f"<primitive {self.name} ({self.kind}, arity {self.arity})>"


PRIMITIVES: dict[str, Primitive] = {}


def declare(name: str, kind: str, arity: int, vjp: Optional[VJP] = None, **facts: Any) -> Primitive:
    """Register a primitive. Elementwise ones default to the snippet of their own name."""
    if name in PRIMITIVES:
        raise ValueError(f"primitive {name!r} is declared twice")
    if kind not in KINDS:
        raise ValueError(f"primitive {name!r}: kind must be one of {KINDS}, got {kind!r}")
    if kind == "elementwise":
        facts.setdefault("snippet", name)
        if facts.get("result", NUMERIC) not in RESULT_RULES:
            raise ValueError(f"primitive {name!r}: result must be one of {RESULT_RULES}")
    prim = Primitive(name, kind, arity, vjp, **facts)
    PRIMITIVES[name] = prim
    return prim
