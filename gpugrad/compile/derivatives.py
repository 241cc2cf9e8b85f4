"""The reverse step of one node: its primitive's derivative rule, applied.

Rules live in the primitive records (gpugrad/core/primitives/) and are written over the math layer
(gpugrad/compile/lax.py), so gradients are lazy graphs like any other and grad(grad(f)) needs nothing
more. A primitive without a rule is an error, never a silent zero.
"""
from __future__ import annotations

from gpugrad.compile import lax
from gpugrad.core.primitives import PRIMITIVES
from gpugrad.core.tensor import Tensor


def vjp(node: Tensor, dy: Tensor) -> tuple:
    """One cotangent per operand of node (None where no gradient flows), given dy."""
    prim = PRIMITIVES.get(node.op)
    if prim is None or prim.vjp is None:
        raise NotImplementedError(
            f"No derivative rule for primitive {node.op!r}: declare one in its record "
            "(gpugrad/core/primitives/).")
    return prim.vjp(lax, node, dy)
