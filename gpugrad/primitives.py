"""The closed set of primitive ops. Every public op is built from these.

Elementwise primitives take operands of one shape (the op layer inserts explicit expand
nodes for broadcasting, so unbroadcasting is the expand rule's job alone) and their math is
the snippet ``kernels/elementwise/<name>.cu``. Reductions keep reduced axes as size 1.
"""
from __future__ import annotations

# name -> arity; math in kernels/elementwise/<name>.cu
UNARY = ("neg", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "log1p",
         "expm1", "abs", "sign", "reciprocal", "copy")
BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "less", "less_equal",
          "greater", "greater_equal", "equal", "not_equal", "logical_and", "logical_or")
TERNARY = ("where",)
ELEMENTWISE = frozenset(UNARY + BINARY + TERNARY)
ARITY = {**{n: 1 for n in UNARY}, **{n: 2 for n in BINARY}, "where": 3}

COMPARISONS = frozenset(("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"))
LOGICAL = frozenset(("logical_and", "logical_or"))
# Ops that need a float operand: an int or bool operand is cast to float32 first.
FLOAT_ONLY = frozenset(("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
                        "log1p", "expm1", "reciprocal", "div", "pow"))

CAST = "cast"                     # arg: target dtype; C++ static_cast / numpy astype
REDUCE = frozenset(("sum", "max", "prod", "argmax"))   # arg: sorted tuple of axes
MOVEMENT = frozenset(("reshape", "permute", "expand", "slice", "unslice"))
MATMUL = "matmul"                 # (..., M, K) @ (..., K, N), equal batch dims
STOP_GRADIENT = "stop_gradient"   # identity whose derivative is disconnected
IDENTITY = "identity"             # identity whose derivative is dy: what an op that changes
                                  # nothing returns inside a gradient call (tensor.same)
LEAVES = frozenset(("buffer", "const"))

# How each reduction starts and combines, for the CUDA templates.
REDUCE_IDENTITY = {"sum": "0", "prod": "1", "max": "-INFINITY", "argmax": "-INFINITY"}


def is_elementwise(op: str) -> bool:
    return op in ELEMENTWISE or op == CAST or op == STOP_GRADIENT or op == IDENTITY
