"""What a primitive record lacks: the completeness test runs this over every record, and
anyone adding a primitive can run it over theirs."""
from __future__ import annotations

from gpugrad.core.snippets import numpy_function, snippet_path
from gpugrad.core.primitives.record import Primitive


def missing_facts(prim: Primitive) -> list[str]:
    """Every primitive needs a derivative rule; an elementwise one also its snippet file, a
    numpy form of that snippet, a float64 reference and a test domain."""
    lacks = []
    if prim.vjp is None:
        lacks.append("a derivative rule (vjp)")
    if prim.kind != "elementwise":
        return lacks
    if not snippet_path(prim.snippet).is_file():
        lacks.append(f"its snippet {snippet_path(prim.snippet)}")
    else:
        try:
            numpy_function(prim.name, prim.arity, "float64")
        except Exception as exc:   # noqa: BLE001 - any failure means no usable numpy form
            lacks.append(f"a numpy form of its snippet ({type(exc).__name__}: {exc})")
    if prim.reference is None:
        lacks.append("a float64 reference")
    if prim.domain is None or len(prim.domain) != prim.arity:
        lacks.append(f"a test domain (one (lo, hi) per operand, {prim.arity} in all)")
    return lacks
