"""One case per primitive of gpugrad.core.primitives: inputs on a sensible domain and the expression
that reaches that primitive. A primitive without a case here is reported as a failure, so a new
primitive cannot slip past the selfcheck unchecked."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

import gpugrad as tf

from gpugrad.core import primitives as P
from gpugrad.core.tensor import elementwise as make_elementwise  # `gpugrad.core.tensor` is the function tf.tensor

SHAPE = (37, 11)        # ragged against the 256-thread block, several blocks on the emulator
POSITIVE = (0.2, 2.0)   # log, sqrt, rsqrt, reciprocal, pow's base
SIGNED = (-2.0, 2.0)


@dataclass
class Case:
    """build(*inputs) -> the output; inputs are drawn from domains (one (lo, hi) per input, on
    SHAPE unless shapes says otherwise); differentiable says whether the gradient is checked."""
    name: str
    build: Callable
    domains: tuple = (SIGNED,)
    shapes: tuple | None = None
    differentiable: bool = True

    def inputs(self, rng: np.random.Generator, dtype: str) -> list[np.ndarray]:
        shapes = self.shapes or (SHAPE,) * len(self.domains)
        arrays = [rng.uniform(lo, hi, shape) for (lo, hi), shape in zip(self.domains, shapes)]
        if len(arrays) == 2 and arrays[0].shape == arrays[1].shape:
            # Ties on every fifth element: maximum/minimum split the gradient there and the
            # comparisons turn on equality, so both backends must agree on ties too.
            arrays[1].flat[::5] = arrays[0].flat[::5]
        return [a.astype(dtype) for a in arrays]


def _elementwise(op: str) -> Callable:
    return lambda *xs: make_elementwise(op, tuple(xs), xs[0].dtype)


def _domains(op: str) -> tuple:
    return tuple(P.PRIMITIVES[op].domain)   # every elementwise record carries its test domain


def cases() -> dict[str, list[Case]]:
    """primitive name -> its cases."""
    table: dict[str, list[Case]] = {}
    for op in P.UNARY + P.BINARY:
        if op in P.LOGICAL:
            table[op] = [Case(op, lambda a, b, op=op: getattr(tf, op)(a > 0, b > 0),
                              (SIGNED, SIGNED), differentiable=False)]
        elif op in P.COMPARISONS:
            table[op] = [Case(op, lambda a, b, op=op: getattr(tf, op)(a, b), _domains(op),
                              differentiable=False)]
        else:
            table[op] = [Case(op, _elementwise(op), _domains(op))]
    table["where"] = [Case("where", lambda a, b: tf.where(a > b, a, b), (SIGNED, SIGNED))]
    table[P.CAST] = [Case("cast-float-int32", lambda a: tf.cast(a * 3, "int32"), differentiable=False),
                     Case("cast-bool-float", lambda a: tf.cast(a > 0, "float32") * a),
                     Case("cast-float-float64", lambda a: tf.cast(a, "float64") * 1.5)]
    table[P.STOP_GRADIENT] = [Case("stop_gradient", lambda a: tf.stop_gradient(a * a) * a)]
    # An op that changes nothing is an "identity" node inside a gradient call (the backward
    # half of this case), and x itself outside one.
    table["identity"] = [Case("identity", lambda a: tf.reshape(a, a.shape) * 2)]
    # A rule that is not the true derivative (3x for x^2), so both backends must run the
    # user's rule, not their own.
    table["custom_grad"] = [Case("custom_grad", lambda a: tf.custom_grad(
        lambda x, save: {"value": x * x, "grad_func": lambda dy, saved: dy * 3.0 * x})(a))]
    table["sum"] = [Case("sum-axis0", lambda a: tf.sum(a, 0)), Case("sum-all", lambda a: tf.sum(a)),
                    Case("sum-axis2", lambda a: tf.sum(a, 2), shapes=((3, 5, 6),))]
    table["max"] = [Case("max-axis1", lambda a: tf.max(a, 1)), Case("min-axis0", lambda a: tf.min(a, 0)),
                    # clipped to 0.5, a row holds several equal maxima: they share the gradient
                    Case("max-ties", lambda a: tf.max(tf.minimum(a, 0.5), 1))]
    table["prod"] = [Case("prod-axis1", lambda a: tf.prod(a, 1), ((0.5, 1.5),)),
                     Case("prod-axis0", lambda a: tf.prod(a, 0), ((0.5, 1.5),))]
    table["argmax"] = [Case("argmax-axis1", lambda a: tf.argmax(a, 1), differentiable=False),
                       Case("argmin-axis0", lambda a: tf.argmin(a, 0), differentiable=False)]
    table["reshape"] = [Case("reshape", lambda a: tf.reshape(a, (11, 37)) * 2)]
    table["permute"] = [Case("permute", lambda a: tf.transpose(a) * 2),
                        Case("permute-3d", lambda a: tf.transpose(a, (2, 0, 1)) + 1, shapes=((3, 5, 6),))]
    table["expand"] = [Case("expand", lambda a, b: a * b, (SIGNED, SIGNED), shapes=((37, 1), (1, 11)))]
    table["slice"] = [Case("slice", lambda a: a[3:30:2, ::-3] * 2),
                      Case("slice-concat", lambda a: tf.concat([a[:, :4], a[:, 7:]], 1) * 3)]
    table["unslice"] = [Case("pad", lambda a: tf.pad(a * 2, [[1, 2], [3, 0]], 0.5))]
    table[P.MATMUL] = [Case("matmul", lambda a, b: tf.matmul(a, b), (SIGNED, SIGNED),
                            shapes=((37, 11), (11, 13))),
                       Case("matmul-batch-tb", lambda a, b: tf.matmul(a, b, False, True), (SIGNED, SIGNED),
                            shapes=((3, 9, 7), (3, 5, 7)))]
    # some indices repeat (the gradient adds them up), one segment id is negative (dropped)
    segments = [k % 7 - 1 for k in range(SHAPE[0])]
    table["gather"] = [Case("gather-axis1", lambda a: tf.gather(a, [3, 0, 10, 3], 1) * 2),
                       Case("gather-nd", lambda a: tf.sin(tf.gather_nd(a, [[36, 10], [0, 1], [36, 10]])))]
    table["scatter_add"] = [Case("unsorted-segment-sum", lambda a: tf.unsorted_segment_sum(a * a, segments, 6)),
                            Case("scatter-nd", lambda a: tf.scatter_nd([[2], [0], [2]], a[:3], [4, 11]) * 3)]
    table["cumsum"] = [Case("cumsum-axis0", lambda a: tf.cumsum(a * 2, 0)),
                       Case("cumsum-exclusive-reverse", lambda a: tf.cumsum(a, 1, True, True)),
                       # one line longer than a chunk: chunk totals, then the chunks (positive:
                       # a signed running sum passes near 0, where float32 keeps no digits)
                       Case("cumsum-long", lambda a: tf.cumsum(a, 1), (POSITIVE,), shapes=((2, 9000),))]
    table["cumprod"] = [Case("cumprod-axis1", lambda a: tf.cumprod(a, 1), ((0.8, 1.2),)),
                        Case("cumprod-exclusive-reverse", lambda a: tf.cumprod(a, 0, True, True), ((0.8, 1.2),))]
    return table


def all_primitives() -> list[str]:
    """Every primitive gpugrad declares (one record each), in declaration order."""
    return list(P.PRIMITIVES)
