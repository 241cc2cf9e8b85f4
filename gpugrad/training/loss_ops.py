"""tf.losses: TF.js's loss functions, with its argument order, defaults and reductions.

Each loss computes an elementwise (or per-row) loss tensor and hands it, with the optional
``weights``, to ``compute_weighted_loss``, which applies the ``reduction`` (TF.js's
tfjs-core/src/ops/losses/*.ts). Everything is built from gpugrad ops, so losses are lazy,
differentiable (to any order) and fuse with the model's graph.

Differences from TF.js, on purpose:
* A reduction that divides by the weights (MEAN, SUM_BY_NONZERO_WEIGHTS) gives 0, not NaN,
  when every weight is 0 (TF Python's ``div_no_nan``): a fully masked batch must not poison
  training with NaN.
* ``weights`` must have rank 0 or the rank of the losses, each axis 1 or equal (what TF.js
  documents; TF.js itself broadcasts either way, so weights of a larger shape silently grow
  the loss). A lower rank is refused rather than right-aligned, which would weight the wrong
  axis whenever two sizes coincide.
* Losses are computed in the float dtype of the predictions (float64 stays float64; TF.js is
  float32 only); labels and weights are cast to it.
* ``softmax_cross_entropy`` also takes integer class labels (shape logits.shape[:-1]), label
  smoothing divides by the size of the LAST axis (TF.js reads shape[1], wrong beyond rank 2),
  and its gradient is the exact one, softmax * sum(labels) - labels (TF.js hard-codes
  softmax - labels, which its docs call incorrect when a row of labels does not sum to 1).
* ``sigmoid_cross_entropy`` uses softplus(x) - x*z, whose derivative at x = 0 is the true
  sigmoid(0) - z (TF.js's relu(x) - x*z + log1p(exp(-|x|)) has kinks there: with the
  relu'(0) = abs'(0) = 0 convention its gradient at a zero logit would be off by 0.5, and
  zero logits are exactly what a zero-initialized output layer produces).
* ``Reduction.SUM_OVER_BATCH_SIZE`` (TF Python's): the weighted sum over the number of loss
  elements, whatever the weights.
"""
from __future__ import annotations

import enum
import math
import numbers
from types import SimpleNamespace
from typing import Any

import numpy as np

from gpugrad import backends
from gpugrad.core import dtypes
from gpugrad.api import ops as O
from gpugrad.core.caches import Table
from gpugrad.core.tensor import Tensor, WeakIdDict, leaf as make_leaf
from gpugrad.core.tfjs_names import install as install_tfjs_names
from gpugrad.api.variables import Variable


class Reduction(enum.IntEnum):
    """How a loss tensor becomes the loss (TF.js's tf.Reduction, same numbers)."""
    NONE = 0                    # the weighted losses, unreduced
    MEAN = 1                    # sum(w * l) / sum(w broadcast to l's shape)
    SUM = 2                     # sum(w * l)
    SUM_BY_NONZERO_WEIGHTS = 3  # sum(w * l) / count of nonzero w (broadcast); TF.js's default
    SUM_OVER_BATCH_SIZE = 4     # sum(w * l) / l.size (TF Python's; not in TF.js)


def _reduction(who: str, reduction: Any) -> Reduction:
    """A Reduction from a member, its number (TF.js's enum values) or its name."""
    if isinstance(reduction, Reduction):
        return reduction
    if isinstance(reduction, numbers.Integral) and not isinstance(reduction, bool):
        if int(reduction) in Reduction._value2member_map_:
            return Reduction(int(reduction))
    elif isinstance(reduction, str) and reduction.upper() in Reduction.__members__:
        return Reduction[reduction.upper()]
    raise ValueError(f"Unknown reduction: {reduction!r} (in {who}); use one of tf.losses.Reduction."
                     f"{', '.join(Reduction.__members__)}.")


# --- argument handling -------------------------------------------------------------------------


def _float_dtype(x: Any) -> str:
    """The dtype a loss is computed in: the float dtype of x (a tensor), else float32."""
    return x.dtype if isinstance(x, Tensor) and dtypes.is_float(x.dtype) else dtypes.float32


def _as(x: Any, dtype: str) -> Tensor:
    """x as a tensor of dtype; host data is converted straight to it (float64 arrays stay exact
    for a float64 loss, where tensor() would first round them to float32)."""
    if isinstance(x, Tensor):
        x = O.convert(x)
        return x if x.dtype == dtype else O.cast(x, dtype)
    return O.convert(x, dtype)


def _shape_of(x: Any) -> tuple:
    return tuple(x.shape) if isinstance(x, (Tensor, np.ndarray)) else np.shape(x)


def _pair(who: str, labels: Any, predictions: Any, names: tuple[str, str] = ("labels", "predictions")
          ) -> tuple[Tensor, Tensor]:
    """labels and predictions as tensors of the loss dtype, their shapes checked to match."""
    dtype = _float_dtype(predictions)
    predictions = _as(predictions, dtype)
    a, b = _shape_of(labels), predictions.shape
    if tuple(a) != tuple(b):
        js = ",".join(map(str, a)), ",".join(map(str, b))
        raise ValueError(
            f"Error in {who}: Shapes {js[0]} and {js[1]} must match ({names[0]} shape {list(a)} and "
            f"{names[1]} shape {list(b)} must match: one label per prediction; check the batch size).")
    return _as(labels, dtype), predictions


def _number(who: str, name: str, value: Any, low: float, high: float = math.inf,
            low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) \
            or not (value > low if low_open else value >= low) or not value <= high:
        bound = f"({low:g}" if low_open else f"[{low:g}"
        raise ValueError(f"{who}: {name} must be a number in {bound}, {high:g}], got {value!r}.")
    return float(value)


def _weights(who: str, weights: Any, losses: Tensor) -> Tensor | None:
    """weights as a tensor of the losses' dtype, checked to broadcast to the losses' shape."""
    if weights is None:
        return None
    w = _as(weights, losses.dtype)
    ok = w.ndim == 0 or (w.ndim == losses.ndim and all(
        a == 1 or a == b for a, b in zip(w.shape, losses.shape)))
    if not ok:
        hint = ""
        if 0 < w.ndim < losses.ndim and tuple(w.shape) == tuple(losses.shape[:w.ndim]):
            hint = (f" To weight along the leading axes, reshape them to "
                    f"{list(w.shape) + [1] * (losses.ndim - w.ndim)}.")
        raise ValueError(
            f"{who}: weights of shape {list(w.shape)} do not broadcast to the losses' shape "
            f"{list(losses.shape)}; weights must be a scalar or have rank {losses.ndim} with each "
            f"axis 1 or equal to the losses' axis.{hint}")
    return w


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """num / den, and 0 where den is 0 (TF Python's div_no_nan; gradients stay finite too)."""
    nonzero = O.not_equal(den, 0)
    return O.where(nonzero, O.div(num, O.where(nonzero, den, O.ones_like(den))), O.zeros_like(num))


def _weighted(who: str, losses: Tensor, weights: Any, reduction: Any) -> Tensor:
    """compute_weighted_loss on a loss tensor built here (reduction already validated or not)."""
    reduction = _reduction(who, reduction)
    w = _weights(who, weights, losses)
    weighted = losses if w is None else O.mul(losses, w)
    if reduction == Reduction.NONE:
        return weighted
    total = O.sum(weighted)
    if reduction == Reduction.SUM:
        return total
    if reduction == Reduction.SUM_OVER_BATCH_SIZE or w is None:
        # Without weights MEAN and SUM_BY_NONZERO_WEIGHTS are the plain mean too (TF.js).
        return O.div(total, max(losses.size, 1))
    # How many times broadcasting repeats each weight (TF.js's broadcastFactor).
    repeat = losses.size // max(w.size, 1)
    if reduction == Reduction.MEAN:
        den = O.mul(O.sum(w), repeat)
    else:   # SUM_BY_NONZERO_WEIGHTS
        den = O.mul(O.sum(O.cast(O.not_equal(w, 0), losses.dtype)), repeat)
    return _safe_div(total, den)


# --- the losses (TF.js's order: labels, predictions, [specific], weights, [specific], reduction) --


def compute_weighted_loss(losses: Any, weights: Any = None,
                          reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.computeWeightedLoss(losses, weights?, reduction): weights (rank 0 or the rank of
    losses, each axis 1 or equal) times losses, reduced as ``reduction`` says."""
    reduction = _reduction("compute_weighted_loss", reduction)
    return _weighted("compute_weighted_loss", _as(losses, _float_dtype(losses)), weights, reduction)


def mean_squared_error(labels: Any, predictions: Any, weights: Any = None,
                       reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.meanSquaredError: (predictions - labels)^2, weighted and reduced."""
    reduction = _reduction("mean_squared_error", reduction)
    labels, predictions = _pair("mean_squared_error", labels, predictions)
    return _weighted("mean_squared_error", O.squared_difference(labels, predictions), weights, reduction)


def absolute_difference(labels: Any, predictions: Any, weights: Any = None,
                        reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.absoluteDifference: |labels - predictions|, weighted and reduced."""
    reduction = _reduction("absolute_difference", reduction)
    labels, predictions = _pair("absolute_difference", labels, predictions)
    return _weighted("absolute_difference", O.abs(O.sub(labels, predictions)), weights, reduction)


def huber_loss(labels: Any, predictions: Any, weights: Any = None, delta: float = 1.0,
               reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.huberLoss: 0.5 e^2 for e = |predictions - labels| <= delta, then linear:
    0.5 delta^2 + delta (e - delta)."""
    reduction = _reduction("huber_loss", reduction)
    delta = _number("huber_loss", "delta", delta, 0.0, low_open=True)
    labels, predictions = _pair("huber_loss", labels, predictions)
    error = O.abs(O.sub(predictions, labels))
    quadratic = O.minimum(error, delta)
    losses = O.add(O.mul(O.square(quadratic), 0.5), O.mul(O.sub(error, quadratic), delta))
    return _weighted("huber_loss", losses, weights, reduction)


def hinge_loss(labels: Any, predictions: Any, weights: Any = None,
               reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.hingeLoss: labels in {0, 1} become -1 / +1; max(0, 1 - label * prediction)."""
    reduction = _reduction("hinge_loss", reduction)
    labels, predictions = _pair("hinge_loss", labels, predictions)
    signs = O.sub(O.mul(labels, 2), 1)
    return _weighted("hinge_loss", O.relu(O.sub(1, O.mul(signs, predictions))), weights, reduction)


def log_loss(labels: Any, predictions: Any, weights: Any = None, epsilon: float = 1e-7,
             reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.logLoss: -labels log(p + eps) - (1 - labels) log(1 - p + eps), for predicted
    probabilities p (use sigmoid_cross_entropy on logits: it is stable where this saturates)."""
    reduction = _reduction("log_loss", reduction)
    epsilon = _number("log_loss", "epsilon", epsilon, 0.0)
    labels, predictions = _pair("log_loss", labels, predictions)
    positive = O.mul(labels, O.log(O.add(predictions, epsilon)))
    negative = O.mul(O.sub(1, labels), O.log(O.add(O.sub(1, predictions), epsilon)))
    return _weighted("log_loss", O.neg(O.add(positive, negative)), weights, reduction)


def cosine_distance(labels: Any, predictions: Any, axis: int | None = None, weights: Any = None,
                    reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.cosineDistance: 1 - sum(labels * predictions, axis) (kept as a size-1 axis), for
    unit-normalized labels and predictions (as TF.js, nothing normalizes them here)."""
    reduction = _reduction("cosine_distance", reduction)
    labels, predictions = _pair("cosine_distance", labels, predictions)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"cosine_distance: axis must be an integer (the axis the vectors lie along, "
                        f"e.g. -1), got {axis!r}; TF.js's cosineDistance takes it third, after "
                        "predictions.")
    if not -labels.ndim <= axis < max(labels.ndim, 1):
        raise ValueError(f"cosine_distance: axis {axis} is out of range for inputs of shape "
                         f"{list(labels.shape)}.")
    losses = O.sub(1, O.sum(O.mul(labels, predictions), int(axis), True))
    return _weighted("cosine_distance", losses, weights, reduction)


def _smoothing(who: str, label_smoothing: Any) -> float:
    return _number(who, "label_smoothing", label_smoothing, 0.0, 1.0)


def sigmoid_cross_entropy(multi_class_labels: Any, logits: Any, weights: Any = None,
                          label_smoothing: float = 0.0,
                          reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.sigmoidCrossEntropy from logits x and labels z in [0, 1]:
    softplus(x) - x z (stable for any x). label_smoothing s moves labels towards 1/2:
    z (1 - s) + s / 2."""
    who = "sigmoid_cross_entropy"
    reduction = _reduction(who, reduction)
    smoothing = _smoothing(who, label_smoothing)
    labels, logits = _pair(who, multi_class_labels, logits, ("multi_class_labels", "logits"))
    if smoothing > 0:
        labels = O.add(O.mul(labels, 1 - smoothing), 0.5 * smoothing)
    losses = O.sub(O.softplus(logits), O.mul(logits, labels))
    return _weighted(who, losses, weights, reduction)


_class_ranges = Table("class index ranges", 64)


def _class_range(n: int) -> Tensor:
    """[0, 1, ..., n-1] as an int32 leaf, one per (backend, n): a new tensor per call would be
    a new leaf per call, so the graph of a training step would never have the key of the last
    one (autodiff finds a repeated call's plan by key) and each call would copy it to the
    device. Not tracked: never disposed by a tidy, not counted by tf.memory(), never written."""
    backend = backends.current()
    key = (backend.name, id(backend), n)
    leaf = _class_ranges.get(key)
    if leaf is None:
        leaf = make_leaf(backend.asarray(np.arange(n, dtype=np.int32), dtypes.int32), (n,), dtypes.int32,
                         tracked=False)
        _class_ranges.put(key, leaf)
    return leaf


def softmax_cross_entropy(onehot_labels: Any, logits: Any, weights: Any = None,
                          label_smoothing: float = 0.0,
                          reduction: Reduction | int | str = Reduction.SUM_BY_NONZERO_WEIGHTS) -> Tensor:
    """tf.losses.softmaxCrossEntropy from logits: -sum(labels * log_softmax(logits), -1) per row,
    weighted (weights: a scalar or one per row) and reduced; the default is the batch mean.
    labels are one-hot / probability rows (shape of logits) or, beyond TF.js, integer class
    indices (shape logits.shape[:-1]). label_smoothing s: labels (1 - s) + s / classes.
    Stable: log_softmax subtracts the row maximum before exponentiating."""
    who = "softmax_cross_entropy"
    reduction = _reduction(who, reduction)
    smoothing = _smoothing(who, label_smoothing)
    logits = O.convert(logits)
    if not dtypes.is_float(logits.dtype):
        logits = O.cast(logits, dtypes.float32)
    kind, target = class_targets(who, onehot_labels, logits)
    if kind == "index":
        classes = _class_range(logits.shape[-1])
        target = O.cast(O.equal(O.expand_dims(target, -1), classes), logits.dtype)
    if smoothing > 0:
        target = O.add(O.mul(target, 1 - smoothing), smoothing / logits.shape[-1])
    losses = O.neg(O.sum(O.mul(target, O.log_softmax(logits, -1)), -1))
    return _weighted(who, losses, weights, reduction)


# --- class labels ------------------------------------------------------------------------------

# The range of integer labels whose values the host already knows (made by nn.batches(), or read
# back once): checking them again costs no device-to-host copy (a sync on a GPU).
known_labels: "WeakIdDict[Tensor, tuple]" = WeakIdDict()  # by identity: == is elementwise


def label_summary(values: np.ndarray) -> tuple[bool, float, float]:
    """(all integral and finite, min, max) of label values."""
    if not values.size:
        return True, 0, 0
    integral = values.dtype.kind in "iu" or (
        values.dtype.kind == "f" and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values))))
    return integral, (values.min() if integral else 0), (values.max() if integral else 0)


def _class_indices(who: str, labels: Any, logits: Tensor) -> Tensor:
    """Integer class labels of shape logits.shape[:-1], checked to lie in [0, classes)."""
    classes = logits.shape[-1]
    summary = known_labels.get(labels) if isinstance(labels, Tensor) else None
    values = None
    if summary is None:
        values = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
        if values.dtype.kind not in "iuf" and values.size:
            raise ValueError(f"{who}: class labels must be integers, got {values.dtype} values.")
        summary = label_summary(values)
        if isinstance(labels, Tensor) and not isinstance(labels, Variable):  # (variables change)
            known_labels[labels] = summary
    integral, low, high = summary
    if not integral or low < 0 or high >= classes:
        values = labels.numpy() if values is None else values   # the error path may read back
        if not integral:
            raise ValueError(f"{who}: class labels must be integers, got {values.dtype} values such "
                             f"as {values.reshape(-1)[:3].tolist()}.")
        bad = (values < 0) | (values >= classes)
        raise ValueError(
            f"{who}: labels out of range: {values[bad].reshape(-1)[:5].astype(np.int64).tolist()} "
            f"(logits have {classes} classes, so labels must lie in [0, {classes - 1}]).")
    if isinstance(labels, Tensor) and labels.dtype == dtypes.int32:
        return O.convert(labels)
    if values is None:
        return O.cast(labels, dtypes.int32)
    return O.tensor(values.astype(np.int32), dtype="int32")


def class_targets(who: str, labels: Any, logits: Tensor) -> tuple[str, Tensor]:
    """('index', int labels) or ('onehot', float labels), told apart by shape."""
    shape = _shape_of(labels)
    if logits.ndim == 0:
        raise ValueError(f"{who}: logits must have a class axis, got a scalar.")
    if tuple(shape) == logits.shape:
        return "onehot", _as(labels, logits.dtype)
    if tuple(shape) == logits.shape[:-1]:
        return "index", _class_indices(who, labels, logits)
    raise ValueError(
        f"{who}: labels of shape {list(shape)} do not fit logits of shape {list(logits.shape)}; "
        f"give class indices of shape {list(logits.shape[:-1])} or one-hot labels of shape "
        f"{list(logits.shape)} (are the batch sizes equal?).")


# tf.losses: only the loss functions and Reduction, so that every public name in it is a loss
# (tests/test_tfjs_api.py checks each has its TF.js name).
losses = SimpleNamespace(
    Reduction=Reduction, compute_weighted_loss=compute_weighted_loss,
    mean_squared_error=mean_squared_error, absolute_difference=absolute_difference,
    huber_loss=huber_loss, hinge_loss=hinge_loss, log_loss=log_loss,
    cosine_distance=cosine_distance, sigmoid_cross_entropy=sigmoid_cross_entropy,
    softmax_cross_entropy=softmax_cross_entropy)
install_tfjs_names(losses)  # meanSquaredError, softmaxCrossEntropy, ...: one table, no drift
