"""Random expression graphs from a seed (no hypothesis: the selfcheck needs only numpy).

A graph is a list of steps over 1-3 inputs whose shapes broadcast against each other: smooth
unary ops on safe domains, broadcasting binary ops, reductions over random axes, softmax,
reshapes, transposes, slices, pads, concat/stack and matmul. Steps are drawn by building the
graph lazily with gpugrad itself, so every shape rule is gpugrad's own; ``build`` replays the
steps on any inputs. The same seed gives the same graph on every machine.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import gpugrad as tf

MAX_ELEMENTS = 1024     # per value: small enough for the CPU emulator, big enough for blocks


def _mask(shape) -> np.ndarray:
    return (np.arange(math.prod(shape)) % 3 != 0).reshape(shape)


def _where(a, b):
    shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    return tf.where(tf.tensor(_mask(shape)), a, b)


# Unary ops keep values bounded and arguments in their domains by construction.
UNARY: dict[str, Callable] = {
    "neg": tf.neg, "sin": tf.sin, "cos": tf.cos, "tanh": tf.tanh, "sigmoid": tf.sigmoid,
    "abs": tf.abs, "relu": tf.relu, "softplus": tf.softplus, "elu": tf.elu, "sign": tf.sign,
    "square_tanh": lambda x: tf.square(tf.tanh(x)) * 2.0,
    "exp_tanh": lambda x: tf.exp(tf.tanh(x)),
    "expm1_tanh": lambda x: tf.expm1(tf.tanh(x)),
    "log_1_sq": lambda x: tf.log(tf.square(x) + 1.0),
    "log1p_sq": lambda x: tf.log1p(x * x),
    "sqrt_1_sq": lambda x: tf.sqrt(1.0 + x * x),
    "rsqrt_1_sq": lambda x: tf.rsqrt(x * x + 0.5),
    "recip_1_sq": lambda x: 1.0 / (1.0 + tf.square(x)),
    "pow_const": lambda x: tf.pow(tf.sigmoid(x) + 0.5, 2.5),
    "scale": lambda x: x * -1.5,
}

BINARY: dict[str, Callable] = {
    "add": tf.add, "sub": tf.sub, "mul": tf.mul, "maximum": tf.maximum, "minimum": tf.minimum,
    "div_safe": lambda a, b: a / (tf.square(b) + 1.0),
    "pow_safe": lambda a, b: tf.pow(tf.sigmoid(a) + 0.5, tf.tanh(b)),
    "squared_difference": tf.squared_difference,
    "where": _where,
}

REDUCE: dict[str, Callable] = {
    "sum": tf.sum, "mean": tf.mean, "max": tf.max, "min": tf.min, "logsumexp": tf.logsumexp,
    "prod_bounded": lambda x, axis, keep: tf.prod(tf.sigmoid(x) + 0.5, axis, keep),
}

OTHER = ("softmax", "log_softmax", "reshape", "transpose", "expand_dims", "squeeze",
         "broadcast_to", "slice", "pad", "concat", "stack", "matmul")


@dataclass
class Step:
    kind: str
    srcs: tuple
    params: dict = field(default_factory=dict)


@dataclass
class Graph:
    seed: int
    dtype: str
    input_shapes: list
    steps: list

    def describe(self) -> str:
        k = len(self.input_shapes)
        lines = [f"graph seed {self.seed} ({self.dtype}), inputs {self.input_shapes}"]
        for i, s in enumerate(self.steps):
            params = "".join(f", {a}={b!r}" for a, b in s.params.items())
            lines.append(f"  v{k + i} = {s.kind}({', '.join(f'v{j}' for j in s.srcs)}{params})")
        return "\n".join(lines)

    def sinks(self) -> list[int]:
        used = {j for s in self.steps for j in s.srcs}
        return [i for i in range(len(self.input_shapes) + len(self.steps)) if i not in used]


def apply(step: Step, values: list):
    args = [values[j] for j in step.srcs]
    p = step.params
    kind = step.kind
    if kind in UNARY:
        return UNARY[kind](*args)
    if kind in BINARY:
        return BINARY[kind](*args)
    if kind in REDUCE:
        return REDUCE[kind](args[0], p["axis"], p["keep_dims"])
    if kind == "softmax":
        return tf.softmax(args[0], p["axis"])
    if kind == "log_softmax":
        return tf.log_softmax(args[0], p["axis"])
    if kind == "reshape":
        return tf.reshape(args[0], p["shape"])
    if kind == "transpose":
        return tf.transpose(args[0], p["perm"])
    if kind == "expand_dims":
        return tf.expand_dims(args[0], p["axis"])
    if kind == "squeeze":
        return tf.squeeze(args[0])
    if kind == "broadcast_to":
        return tf.broadcast_to(args[0], p["shape"])
    if kind == "slice":
        return args[0][tuple(slice(*s) for s in p["slices"])]
    if kind == "pad":
        return tf.pad(args[0], p["paddings"], p["value"])
    if kind == "concat":
        return tf.concat(args, p["axis"])
    if kind == "stack":
        return tf.stack(args, p["axis"])
    if kind == "matmul":
        return tf.matmul(args[0], args[1], False, True)
    raise ValueError(f"unknown step kind {kind!r}")


def build(graph: Graph, inputs: list) -> list:
    """Every value of the graph (inputs first) built from inputs, lazily."""
    values = list(inputs)
    for step in graph.steps:
        values.append(apply(step, values))
    return values


def generate(seed: int, max_steps: int = 10) -> Graph:
    """A random graph; dtype float64 for three seeds in four, float32 for the fourth."""
    rng = np.random.default_rng(seed)
    dtype = "float32" if seed % 4 == 3 else "float64"
    rank = int(rng.choice(4, p=[0.1, 0.3, 0.3, 0.3]))
    base = [int(d) for d in rng.integers(1, 7, rank)]
    shapes = []
    for _ in range(int(rng.integers(1, 4))):
        shape = base if rng.random() < 0.6 else base[int(rng.integers(0, rank + 1)):]
        shapes.append(tuple(1 if rng.random() < 0.25 else d for d in shape))
    values = [tf.tensor(np.zeros(s), dtype=dtype) for s in shapes]
    graph = Graph(seed, dtype, shapes, [])
    for _ in range(int(rng.integers(3, max_steps + 1))):
        for _attempt in range(20):
            step = _draw(rng, values)
            if step is None:
                continue
            out = apply(step, values)
            if out.size <= MAX_ELEMENTS and out.size > 0:
                graph.steps.append(step)
                values.append(out)
                break
    return graph


def _pick(rng, values) -> int:
    """The newest value half the time (long chains), else any."""
    return len(values) - 1 if rng.random() < 0.5 else int(rng.integers(0, len(values)))


def _draw(rng, values) -> Step | None:
    kinds = (list(UNARY), list(BINARY), list(REDUCE), list(OTHER))
    group = kinds[int(rng.choice(4, p=[0.3, 0.3, 0.15, 0.25]))]
    kind = group[int(rng.integers(0, len(group)))]
    a = _pick(rng, values)
    shape = tuple(values[a].shape)
    rank = len(shape)
    if kind in UNARY:
        return Step(kind, (a,))
    if kind in BINARY:
        partners = [j for j, v in enumerate(values) if _broadcastable(shape, tuple(v.shape))]
        return Step(kind, (a, partners[int(rng.integers(0, len(partners)))]))
    if kind in REDUCE:
        if rank == 0 or rng.random() < 0.25:
            axis = None
        else:
            chosen = sorted(int(x) for x in rng.choice(rank, int(rng.integers(1, rank + 1)), replace=False))
            axis = chosen[0] if len(chosen) == 1 else chosen
        return Step(kind, (a,), {"axis": axis, "keep_dims": bool(rng.random() < 0.5)})
    if kind in ("softmax", "log_softmax"):
        return Step(kind, (a,), {"axis": int(rng.integers(-rank, rank))}) if rank else None
    if kind == "reshape":
        return Step(kind, (a,), {"shape": _factor(rng, math.prod(shape))})
    if kind == "transpose":
        return Step(kind, (a,), {"perm": [int(x) for x in rng.permutation(rank)]}) if rank >= 2 else None
    if kind == "expand_dims":
        return Step(kind, (a,), {"axis": int(rng.integers(0, rank + 1))})
    if kind == "squeeze":
        return Step(kind, (a,)) if 1 in shape else None
    if kind == "broadcast_to":
        return Step(kind, (a,), {"shape": [int(rng.integers(2, 4)), *shape]})
    if kind == "slice":
        return Step(kind, (a,), {"slices": [_slice(rng, d) for d in shape]}) if rank else None
    if kind == "pad":
        if not rank:
            return None
        pads = [[int(rng.integers(0, 3)), int(rng.integers(0, 3))] for _ in shape]
        return Step(kind, (a,), {"paddings": pads, "value": float(rng.choice([0.0, 0.5]))})
    same = [j for j, v in enumerate(values) if tuple(v.shape) == shape]
    b = same[int(rng.integers(0, len(same)))]
    if kind == "concat":
        return Step(kind, (a, b), {"axis": int(rng.integers(0, rank))}) if rank else None
    if kind == "stack":
        return Step(kind, (a, b), {"axis": int(rng.integers(0, rank + 1))})
    if kind == "matmul":   # a @ b^T over the last two axes: (..., m, k) x (..., m, k) -> (..., m, m)
        return Step(kind, (a, b)) if rank >= 2 else None
    return None


def _broadcastable(a: tuple, b: tuple) -> bool:
    try:
        out = np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return math.prod(out) <= MAX_ELEMENTS


def _factor(rng, size: int) -> list[int]:
    """A shape of rank 1-3 with size elements."""
    dims = []
    rest = size
    for _ in range(int(rng.integers(0, 2))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = divisors[int(rng.integers(0, len(divisors)))]
        dims.append(d)
        rest //= d
    return dims + [rest]


def _slice(rng, d: int) -> list:
    """start, stop, step with at least one element, steps of either sign."""
    step = int(rng.choice([1, 1, 2, -1, -2]))
    i, j = sorted(int(x) for x in rng.integers(0, d + 1, 2))
    if i == j:
        i, j = 0, d
    return [i, j, step] if step > 0 else [j - 1, (i - 1) if i > 0 else None, step]


def loss_and_grads(graph: Graph, xs: list, weights: list) -> list:
    """[loss, *d loss/d x, *sink values], all lazy: loss = sum over sinks of sum(sink * weight)."""
    sinks = graph.sinks()

    def loss(*args):
        values = build(graph, list(args))
        total = None
        for s, w in zip(sinks, weights):
            term = tf.sum(values[s] * w)
            total = term if total is None else total + term
        return total
    grads = tf.grads(loss)(xs)
    values = build(graph, xs)
    return [loss(*xs), *grads, *(values[s] for s in sinks if s >= len(xs))]


def sink_shapes(graph: Graph) -> list[tuple]:
    values = build(graph, [tf.tensor(np.zeros(s), dtype=graph.dtype) for s in graph.input_shapes])
    return [tuple(values[s].shape) for s in graph.sinks()]
