"""Layers, initializers, losses and metrics: enough to train real models with gpugrad.

Everything here is built from gpugrad ops, so it is lazy, differentiable and fused like any
other graph; the only host work is drawing random numbers (numpy Generators, so a seed gives
the same values on every backend) and checking integer labels.
"""
from __future__ import annotations

import itertools
import math
import numbers
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from gpugrad.core import dtypes
from gpugrad.api import ops as O
# The losses live in loss_ops.py (tf.losses); these names stay importable from gpugrad.training.nn.
from gpugrad.training.loss_ops import known_labels, label_summary, class_targets, losses, mean_squared_error, softmax_cross_entropy  # noqa: F401
from gpugrad.core.tensor import Tensor, same
from gpugrad.api.variables import Variable, variable

Initializer = Callable[..., Tensor]

# --- initializers ------------------------------------------------------------------------------


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    """Keras's fans: [in, out] for a matrix; receptive field times channels for a kernel."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _rng(seed: Any) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _uniform(scale: float, mode: str):
    def init(shape: Sequence[int], seed: Any = None, dtype: str = "float32") -> Tensor:
        fan_in, fan_out = _fans(shape)
        n = fan_in if mode == "in" else (fan_in + fan_out) / 2
        limit = math.sqrt(3 * scale / max(1.0, n))
        return O.tensor(_rng(seed).uniform(-limit, limit, tuple(shape)), dtype=dtype)
    return init


def _normal(scale: float, mode: str):
    def init(shape: Sequence[int], seed: Any = None, dtype: str = "float32") -> Tensor:
        fan_in, fan_out = _fans(shape)
        n = fan_in if mode == "in" else (fan_in + fan_out) / 2
        # A normal truncated at two standard deviations, widened so that the variance is
        # scale / n (Keras; 0.8796 is the truncated unit normal's standard deviation).
        stddev = math.sqrt(scale / max(1.0, n)) / 0.87962566103423978
        rng = _rng(seed)
        out = rng.standard_normal(tuple(shape))
        bad = np.abs(out) > 2
        while bad.any():
            out[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(out) > 2
        return O.tensor(out * stddev, dtype=dtype)
    return init


glorot_uniform = _uniform(1.0, "avg")
glorot_uniform.__doc__ = "Uniform in ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."
glorot_normal = _normal(1.0, "avg")
glorot_normal.__doc__ = "Truncated normal with variance 2 / (fan_in + fan_out)."
he_uniform = _uniform(2.0, "in")
he_uniform.__doc__ = "Uniform in ±sqrt(6 / fan_in) (He et al. 2015), for relu layers."
he_normal = _normal(2.0, "in")
he_normal.__doc__ = "Truncated normal with variance 2 / fan_in (He et al. 2015)."


def zeros(shape: Sequence[int], seed: Any = None, dtype: str = "float32") -> Tensor:
    return O.zeros(shape, dtype)


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he_uniform": he_uniform, "he_normal": he_normal, "zeros": zeros,
}


def _initializer(init: str | Initializer) -> Initializer:
    if callable(init):
        return init
    if init not in INITIALIZERS:
        raise ValueError(f"Unknown initializer {init!r}; choose one of {', '.join(INITIALIZERS)} "
                         "or pass a function (shape, seed, dtype) -> Tensor.")
    return INITIALIZERS[init]


# --- activations and layers ------------------------------------------------------------------------

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    # TF.js layers' names: 'gelu' is the exact (erf) form, 'gelu_new' the tanh approximation.
    "linear": lambda x: x, "relu": O.relu, "gelu": lambda x: O.gelu(x, approximate=False),
    "gelu_new": lambda x: O.gelu(x, approximate=True), "tanh": O.tanh,
    "sigmoid": O.sigmoid, "softmax": O.softmax, "elu": O.elu,
}


def _activation(activation: str | Callable | None) -> Callable[[Tensor], Tensor]:
    if activation is None:
        return ACTIVATIONS["linear"]
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of "
                         f"{', '.join(ACTIVATIONS)}, None, or pass a function.")
    return ACTIVATIONS[activation]


_layer_ids = itertools.count(1)


def _positive_int(who: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}.")
    return int(value)


class _KernelAndBias:
    """A layer's trainable kernel (its shape's last axis is the output size) and optional
    bias, named '<name>/kernel' and '<name>/bias'."""

    def _make_weights(self, kernel_shape: tuple, kernel_initializer, bias_initializer,
                      use_bias: bool, rng, dtype: str) -> None:
        self.kernel: Variable = variable(_initializer(kernel_initializer)(kernel_shape, rng, dtype),
                                         name=f"{self.name}/kernel")
        self.bias: Variable | None = variable(
            _initializer(bias_initializer)((kernel_shape[-1],), rng, dtype),
            name=f"{self.name}/bias") if use_bias else None

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in (self.kernel, self.bias) if v is not None and v.trainable]


class Dense(_KernelAndBias):
    """y = activation(x @ kernel + bias), for x of shape [..., input_dim].

    The kernel and bias are trainable variables named '<name>/kernel' and '<name>/bias', drawn
    from their initializers with ``seed`` (the same seed gives the same weights)."""

    def __init__(self, input_dim: int, units: int, activation: str | Callable | None = None,
                 use_bias: bool = True, kernel_initializer: str | Initializer = "glorot_uniform",
                 bias_initializer: str | Initializer = "zeros", seed: Any = None,
                 name: str | None = None, dtype: str = "float32"):
        self.input_dim = _positive_int("Dense", "input_dim", input_dim)
        self.units = _positive_int("Dense", "units", units)
        self.activation = _activation(activation)
        self.name = name or f"dense_{next(_layer_ids)}"
        dtype = dtypes.canonical(dtype)
        rng = _rng(seed)
        self._make_weights((self.input_dim, self.units), kernel_initializer, bias_initializer,
                           use_bias, rng, dtype)

    def __call__(self, x: Any) -> Tensor:
        x = O.convert(x)
        if x.ndim == 0 or x.shape[-1] != self.input_dim:
            raise ValueError(
                f"Dense layer {self.name!r} expects inputs of shape [..., {self.input_dim}], got "
                f"{list(x.shape)}; reshape the input or build the layer with input_dim="
                f"{x.shape[-1] if x.ndim else 1}.")
        y = O.matmul(x, self.kernel)
        if self.bias is not None:
            y = O.add(y, self.bias)
        return self.activation(y)

    def __repr__(self) -> str:
        return f"<gpugrad.training.nn.Dense {self.name!r} {self.input_dim} -> {self.units}>"


def _pair(who: str, name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return _positive_int(who, name, value[0]), _positive_int(who, name, value[1])
    v = _positive_int(who, name, value)
    return v, v


class Conv2D(_KernelAndBias):
    """y = activation(conv2d(x, kernel, strides, padding) + bias) for NHWC x of shape
    [batch, height, width, input_channels]; kernel [kh, kw, input_channels, filters], named
    '<name>/kernel' and '<name>/bias' as Dense's."""

    def __init__(self, input_channels: int, filters: int, kernel_size: Any, strides: Any = 1,
                 padding: Any = "same", activation: str | Callable | None = None,
                 use_bias: bool = True, kernel_initializer: str | Initializer = "glorot_uniform",
                 bias_initializer: str | Initializer = "zeros", seed: Any = None,
                 name: str | None = None, dtype: str = "float32", dilations: Any = 1):
        self.input_channels = _positive_int("Conv2D", "input_channels", input_channels)
        self.filters = _positive_int("Conv2D", "filters", filters)
        self.kernel_size = _pair("Conv2D", "kernel_size", kernel_size)
        self.strides, self.padding, self.dilations = strides, padding, dilations
        self.activation = _activation(activation)
        self.name = name or f"conv2d_{next(_layer_ids)}"
        dtype = dtypes.canonical(dtype)
        rng = _rng(seed)
        self._make_weights(self.kernel_size + (self.input_channels, self.filters), kernel_initializer,
                           bias_initializer, use_bias, rng, dtype)

    def __call__(self, x: Any) -> Tensor:
        y = O.conv2d(x, self.kernel, self.strides, self.padding, "NHWC", self.dilations)
        if self.bias is not None:
            y = O.add(y, self.bias)
        return self.activation(y)

    def __repr__(self) -> str:
        return (f"<gpugrad.training.nn.Conv2D {self.name!r} {self.input_channels} -> {self.filters}, "
                f"{self.kernel_size[0]}x{self.kernel_size[1]}>")


class MaxPool2D:
    """tf.maxPool over NHWC inputs; strides default to the pool size (as Keras)."""

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: Any = "valid"):
        self.pool_size = _pair("MaxPool2D", "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _pair("MaxPool2D", "strides", strides)
        self.padding = padding

    @property
    def trainable_variables(self) -> list[Variable]:
        return []

    def __call__(self, x: Any) -> Tensor:
        return O.max_pool(x, self.pool_size, self.strides, self.padding)


class Flatten:
    """[batch, ...] -> [batch, everything else]."""

    @property
    def trainable_variables(self) -> list[Variable]:
        return []

    def __call__(self, x: Any) -> Tensor:
        x = O.convert(x)
        return O.reshape(x, (x.shape[0] if x.ndim else 1, -1))


def _rate(who: str, rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"{who}: rate must be a number in [0, 1), got {rate!r}.")
    return float(rate)


def dropout(x: Any, rate: float, seed: Any = None, training: bool = True) -> Tensor:
    """tf.dropout: zero each element with probability rate and scale the rest by 1 / (1 - rate),
    so the expectation is unchanged. The mask is drawn on the host from ``seed`` (an int or a
    numpy Generator), so a seed gives the same mask on every backend."""
    x = O.convert(x)
    rate = _rate("dropout", rate)
    if not training or rate == 0:
        return same(x)   # connected to x inside a gradient call (tensor.same)
    keep = _rng(seed).random(x.shape) >= rate
    scale = np.asarray(keep, dtype=dtypes.NUMPY[dtypes.grad_dtype(x.dtype)]) / (1 - rate)
    return O.mul(x, O.tensor(scale, dtype=dtypes.grad_dtype(x.dtype)))


class Dropout:
    """A dropout layer with its own random stream: seeded, each call draws the next mask."""

    def __init__(self, rate: float, seed: Any = None):
        self.rate = _rate("Dropout", rate)
        self._rng = _rng(seed)

    @property
    def trainable_variables(self) -> list[Variable]:
        return []

    def __call__(self, x: Any, training: bool = True) -> Tensor:
        return dropout(x, self.rate, self._rng, training)


class Sequential:
    """Layers applied in order; Dropout layers are active only when training=True."""

    def __init__(self, layers: Sequence[Callable]):
        self.layers = list(layers)

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for layer in self.layers for v in getattr(layer, "trainable_variables", [])]

    def __call__(self, x: Any, training: bool = False) -> Tensor:
        for layer in self.layers:
            x = layer(x, training) if isinstance(layer, Dropout) else layer(x)
        return x


# --- losses and metrics ------------------------------------------------------------------------------

def accuracy(labels: Any, logits: Any) -> Tensor:
    """The fraction of rows whose largest logit is the label's class (a float32 scalar)."""
    logits = O.convert(logits)
    kind, target = class_targets("accuracy", labels, logits)
    if kind == "onehot":
        target = O.argmax(target, -1)
    return O.mean(O.cast(O.equal(O.argmax(logits, -1), target), dtypes.float32))


metrics = SimpleNamespace(accuracy=accuracy)


# --- data --------------------------------------------------------------------------------------------


def _host(data: Any) -> np.ndarray:
    return data.numpy() if isinstance(data, Tensor) else np.asarray(data)


def _shard(shard: Any) -> tuple[int, int]:
    ok = (isinstance(shard, (tuple, list)) and len(shard) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in shard))
    if not ok or not 0 <= shard[0] < shard[1]:
        raise ValueError(f"batches(): shard must be (rank, size) with 0 <= rank < size, got {shard!r} "
                         "(e.g. shard=(dist.rank(), dist.size())).")
    return int(shard[0]), int(shard[1])


def batches(x: Any, y: Any = None, batch_size: int = 32, shuffle: bool = False, seed: Any = None,
            drop_remainder: bool = False, shard: tuple[int, int] | None = None) -> Iterator:
    """Yield tensors of consecutive (or, with shuffle, seeded random) batches along the first
    axis: xb, or (xb, yb) when y is given. The last batch may be smaller unless drop_remainder.

    shard=(rank, size), for data-parallel training: every rank draws the same global batches
    (give every rank the same seed) and takes its part of each, rows [len*rank//size,
    len*(rank+1)//size) of the batch, so batch_size is the global batch, the ranks together see
    every example once per epoch, and every rank makes the same number of steps. A last batch
    with fewer rows than ranks is skipped on every rank (some would get no rows at all)."""
    batch_size = _positive_int("batches", "batch_size", batch_size)
    rank, size = _shard(shard) if shard is not None else (0, 1)
    xs = _host(x)
    if xs.ndim == 0:
        raise ValueError("batches(): x must have a first (example) axis, got a scalar.")
    ys = None if y is None else _host(y)
    if ys is not None and (ys.ndim == 0 or len(ys) != len(xs)):
        raise ValueError(
            f"batches(): x has {len(xs)} examples but y has {len(ys) if ys.ndim else 'no example axis'}; "
            "they must have the same length along the first axis (mismatched batch sizes).")
    if size > batch_size:
        raise ValueError(f"batches(): batch_size {batch_size} is the global batch, split over {size} "
                         f"ranks; it must be at least {size} so that every rank gets rows.")
    order = _rng(seed).permutation(len(xs)) if shuffle else np.arange(len(xs))
    for start in range(0, len(xs), batch_size):
        idx = order[start:start + batch_size]
        if drop_remainder and len(idx) < batch_size:
            return
        if size > 1:
            if len(idx) < size:
                return
            idx = idx[len(idx) * rank // size:len(idx) * (rank + 1) // size]
        xb = O.tensor(xs[idx])
        if ys is None:
            yield xb
            continue
        yb = O.tensor(ys[idx])
        if ys.dtype.kind in "iu":   # class labels: losses need not read them back to check them
            known_labels[yb] = label_summary(ys[idx])
        yield xb, yb
