"""tf.losses (gpugrad/training/loss_ops.py) against a float64 numpy re-implementation of TF.js's
tfjs-core/src/ops/losses/*.ts: every loss, every reduction, weights of each broadcastable
shape, label smoothing; gradients by central differences; TF.js's argument order and errors."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.testing import check_grads

R = tf.losses.Reduction
RNG = np.random.default_rng(12)
SHAPE = (4, 3)


def t64(x):
    return tf.tensor(np.asarray(x, dtype=np.float64), dtype="float64")


# --- the numpy reference -------------------------------------------------------------------------


def ref_weighted(losses, weights, reduction):
    """TF.js's computeWeightedLoss in float64, with div_no_nan for the weight denominators."""
    wl = losses if weights is None else losses * weights
    if reduction == R.NONE:
        return wl * np.ones(losses.shape)
    if reduction == R.SUM:
        return wl.sum()
    if reduction == R.SUM_OVER_BATCH_SIZE or weights is None:
        return wl.sum() / losses.size
    w = np.broadcast_to(weights, losses.shape)
    den = w.sum() if reduction == R.MEAN else np.count_nonzero(w)
    return wl.sum() / den if den != 0 else 0.0


def ref_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def ref_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


REFS = {
    "mean_squared_error": lambda y, p: (p - y) ** 2,
    "absolute_difference": lambda y, p: np.abs(y - p),
    "huber_loss": lambda y, p, d=1.0: np.where(np.abs(p - y) <= d, 0.5 * (p - y) ** 2,
                                               0.5 * d * d + d * (np.abs(p - y) - d)),
    "hinge_loss": lambda y, p: np.maximum(0, 1 - (2 * y - 1) * p),
    "log_loss": lambda y, p, eps=1e-7: -y * np.log(p + eps) - (1 - y) * np.log(1 - p + eps),
    "sigmoid_cross_entropy": lambda z, x: ref_softplus(x) - x * z,
}


def inputs(name):
    """(labels, predictions) fit for the loss: probabilities for log_loss, {0, 1} for hinge."""
    labels = RNG.uniform(0.05, 0.95, SHAPE)
    predictions = RNG.normal(size=SHAPE) * 2
    if name == "log_loss":
        predictions = RNG.uniform(0.05, 0.95, SHAPE)
    if name == "hinge_loss":
        labels = RNG.integers(0, 2, SHAPE).astype(np.float64)
    return labels, predictions


WEIGHTS = {"none": None, "scalar": 0.7, "full": RNG.uniform(0, 2, SHAPE),
           "rows": np.array([[1.0], [0.0], [2.5], [0.5]]), "cols": np.array([[0.0, 1.5, 2.0]]),
           "zeros-here": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])}


@pytest.mark.parametrize("reduction", list(R))
@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("name", list(REFS))
def test_elementwise_losses_match_numpy(backend, name, weights, reduction):
    labels, predictions = inputs(name)
    w = WEIGHTS[weights]
    expected = ref_weighted(REFS[name](labels, predictions), w, reduction)
    fn = getattr(tf.losses, name)
    got = fn(t64(labels), t64(predictions), None if w is None else t64(w), reduction=reduction)
    assert got.dtype == "float64"
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert got.shape == np.shape(expected)


def test_default_reduction_is_sum_by_nonzero_weights(backend):
    labels, predictions = inputs("absolute_difference")
    w = WEIGHTS["zeros-here"]
    got = tf.losses.absolute_difference(t64(labels), t64(predictions), t64(w))
    expected = (np.abs(labels - predictions) * w).sum() / np.count_nonzero(w)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # and without weights it is the mean, as before (and as TF.js)
    assert tf.losses.mean_squared_error(t64(labels), t64(predictions)).item() == \
        pytest.approx(np.mean((labels - predictions) ** 2), rel=1e-12)


def test_reduction_by_number_or_name_is_tfjs_enum():
    assert [int(r) for r in (R.NONE, R.MEAN, R.SUM, R.SUM_BY_NONZERO_WEIGHTS)] == [0, 1, 2, 3]
    assert tf.Reduction is R
    y, p = t64([[1.0, 2.0]]), t64([[2.0, 4.0]])
    assert tf.losses.absolute_difference(y, p, None, 2).item() == 3.0    # 2 = SUM, as in TF.js
    assert tf.losses.absolute_difference(y, p, None, "sum").item() == 3.0
    assert tf.losses.absolute_difference(y, p, None, R.MEAN).item() == 1.5


def test_all_zero_weights_give_zero_not_nan(backend):
    y, p = t64(np.ones(SHAPE)), t64(np.zeros(SHAPE))
    for reduction in (R.MEAN, R.SUM_BY_NONZERO_WEIGHTS):
        f = lambda q: tf.losses.mean_squared_error(y, q, t64(np.zeros((4, 1))), reduction=reduction)  # noqa: E731
        assert f(p).item() == 0.0
        assert np.all(tf.grad(f)(p).numpy() == 0)


@pytest.mark.parametrize("extra", [{}, {"delta": 0.4}])
def test_huber_delta(backend, extra):
    labels, predictions = inputs("huber_loss")
    got = tf.losses.huber_loss(t64(labels), t64(predictions), None, *extra.values())
    expected = REFS["huber_loss"](labels, predictions, *extra.values()).mean()
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_log_loss_epsilon(backend):
    labels, predictions = np.array([1.0, 0.0]), np.array([0.0, 1.0])   # log(0) without epsilon
    got = tf.losses.log_loss(t64(labels), t64(predictions), None, 1e-3)
    assert got.item() == pytest.approx(-np.log(1e-3), rel=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_sigmoid_cross_entropy_label_smoothing(backend, smoothing):
    labels, logits = inputs("sigmoid_cross_entropy")
    w = WEIGHTS["rows"]
    z = labels * (1 - smoothing) + 0.5 * smoothing
    expected = ref_weighted(REFS["sigmoid_cross_entropy"](z, logits), w, R.SUM_BY_NONZERO_WEIGHTS)
    got = tf.losses.sigmoid_cross_entropy(t64(labels), t64(logits), t64(w), smoothing)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_sigmoid_cross_entropy_is_stable_and_exact_at_zero_logits():
    big = tf.tensor([1000.0, -1000.0, 50.0])
    got = tf.losses.sigmoid_cross_entropy(tf.tensor([1.0, 0.0, 0.0]), big, reduction=R.NONE)
    np.testing.assert_allclose(got.numpy(), [0.0, 0.0, 50.0], atol=1e-6)
    # the derivative at a zero logit is sigmoid(0) - z = 0.5 - z, despite the kinks of relu/abs
    g = tf.grad(lambda x: tf.losses.sigmoid_cross_entropy(t64([1.0, 0.0]), x, reduction=R.SUM))(t64([0.0, 0.0]))
    np.testing.assert_allclose(g.numpy(), [-0.5, 0.5], rtol=1e-15)


@pytest.mark.parametrize("reduction", list(R))
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weights", [None, 0.5, "per-row"])
def test_softmax_cross_entropy_matches_numpy(backend, reduction, smoothing, weights):
    logits = RNG.normal(size=(5, 4)) * 3
    onehot = np.eye(4)[RNG.integers(0, 4, 5)]
    w = RNG.uniform(0, 2, 5) if weights == "per-row" else weights
    target = onehot * (1 - smoothing) + smoothing / 4
    expected = ref_weighted(-(target * ref_log_softmax(logits)).sum(-1), w, reduction)
    tw = None if w is None else t64(w)
    got = tf.losses.softmax_cross_entropy(t64(onehot), t64(logits), tw, smoothing, reduction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)
    # integer class labels (beyond TF.js) are the same loss
    got = tf.losses.softmax_cross_entropy(onehot.argmax(-1), t64(logits), tw, smoothing, reduction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_softmax_label_smoothing_uses_the_last_axis(backend):
    logits = RNG.normal(size=(2, 3, 5))
    onehot = np.eye(5)[RNG.integers(0, 5, (2, 3))]
    target = onehot * 0.7 + 0.3 / 5
    expected = -(target * ref_log_softmax(logits)).sum(-1).mean()
    got = tf.losses.softmax_cross_entropy(t64(onehot), t64(logits), label_smoothing=0.3)
    assert got.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("reduction", list(R))
def test_cosine_distance_matches_numpy(backend, axis, reduction):
    labels, predictions = RNG.normal(size=SHAPE), RNG.normal(size=SHAPE)
    labels /= np.linalg.norm(labels, axis=axis, keepdims=True)
    predictions /= np.linalg.norm(predictions, axis=axis, keepdims=True)
    losses = 1 - (labels * predictions).sum(axis, keepdims=True)
    w = RNG.uniform(0, 1, losses.shape)
    expected = ref_weighted(losses, w, reduction)
    got = tf.losses.cosine_distance(t64(labels), t64(predictions), axis, t64(w), reduction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", list(R))
@pytest.mark.parametrize("weights", list(WEIGHTS))
def test_compute_weighted_loss_matches_numpy(backend, weights, reduction):
    losses = RNG.uniform(0, 3, SHAPE)
    w = WEIGHTS[weights]
    got = tf.losses.compute_weighted_loss(t64(losses), None if w is None else t64(w), reduction)
    np.testing.assert_allclose(got.numpy(), ref_weighted(losses, w, reduction), rtol=1e-12)


def test_float32_inputs_give_float32_and_int_labels_are_cast():
    got = tf.losses.mean_squared_error(tf.tensor([1, 2], dtype="int32"), tf.tensor([1.5, 2.0]))
    assert got.dtype == "float32" and got.item() == pytest.approx(0.125)
    got = tf.losses.mean_squared_error([1.0, 2.0], [1.5, 2.0], [2, 0], "sum")   # plain lists
    assert got.item() == pytest.approx(0.5)


def test_camel_case_names():
    for camel, snake in [("sigmoidCrossEntropy", "sigmoid_cross_entropy"), ("logLoss", "log_loss"),
                         ("huberLoss", "huber_loss"), ("absoluteDifference", "absolute_difference"),
                         ("hingeLoss", "hinge_loss"), ("cosineDistance", "cosine_distance"),
                         ("computeWeightedLoss", "compute_weighted_loss")]:
        assert getattr(tf.losses, camel) is getattr(tf.losses, snake)


# --- gradients -------------------------------------------------------------------------------------


GRAD_CASES = {
    "mean_squared_error": lambda y, p, w: tf.losses.mean_squared_error(y, p, w),
    "absolute_difference": lambda y, p, w: tf.losses.absolute_difference(y, p, w, R.MEAN),
    "huber_loss": lambda y, p, w: tf.losses.huber_loss(y, p, w, 0.8, R.SUM),
    "hinge_loss": lambda y, p, w: tf.losses.hinge_loss(y, p, w, R.NONE),
    "log_loss": lambda y, p, w: tf.losses.log_loss(y, p, w, 1e-7, R.SUM_OVER_BATCH_SIZE),
    "sigmoid_cross_entropy": lambda y, p, w: tf.losses.sigmoid_cross_entropy(y, p, w, 0.1),
    "cosine_distance": lambda y, p, w: tf.losses.cosine_distance(y, p, 1, w[:, :1], R.MEAN),
    "softmax_cross_entropy": lambda y, p, w: tf.losses.softmax_cross_entropy(y, p, w[:, 0], 0.1, R.MEAN),
    "compute_weighted_loss": lambda y, p, w: tf.losses.compute_weighted_loss(y * p, w),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradients_by_central_differences(backend, name):
    """With respect to labels, predictions and weights together (away from the kinks)."""
    labels, predictions = inputs("log_loss" if name == "log_loss" else "mean_squared_error")
    if name == "hinge_loss":   # keep 1 - label * prediction away from 0
        labels = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
        predictions = np.where(labels > 0, 1, -1) * np.array([0.3, 2.0, 0.5])
    weights = RNG.uniform(0.5, 1.5, SHAPE)
    # second order too where the loss is smooth (absolute, hinge and huber have kinks)
    order = 1 if name in ("absolute_difference", "hinge_loss", "huber_loss") else 2
    check_grads(GRAD_CASES[name], [labels, predictions, weights], order=order)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REFS) + ["cosine_distance"])
def test_mismatched_shapes_name_both(name):
    fn = getattr(tf.losses, name)
    extra = (1,) if name == "cosine_distance" else ()
    first = "multi_class_labels" if name == "sigmoid_cross_entropy" else "labels"
    with pytest.raises(ValueError, match=rf"Error in {name}: Shapes 4,1 and 3,1 must match \({first} "
                                         r"shape \[4, 1\] and .* shape \[3, 1\] must match"):
        fn(tf.zeros([4, 1]), tf.zeros([3, 1]), *extra)


@pytest.mark.parametrize("weights,match", [
    (np.ones(4), r"weights of shape \[4\] do not broadcast to the losses' shape \[4, 3\].*"
                 r"reshape them to \[4, 1\]"),
    (np.ones((4, 2)), r"weights of shape \[4, 2\] do not broadcast"),
    (np.ones((2, 4, 3)), r"weights of shape \[2, 4, 3\] do not broadcast"),
])
def test_weights_that_do_not_broadcast(weights, match):
    with pytest.raises(ValueError, match="mean_squared_error: " + match):
        tf.losses.mean_squared_error(tf.zeros(SHAPE), tf.zeros(SHAPE), weights)


def test_bad_arguments():
    y = p = tf.zeros(SHAPE)
    with pytest.raises(ValueError, match=r"Unknown reduction: 7 \(in hinge_loss\).*SUM_BY_NONZERO_WEIGHTS"):
        tf.losses.hinge_loss(y, p, None, 7)
    with pytest.raises(ValueError, match="Unknown reduction: 'average'"):
        tf.losses.compute_weighted_loss(y, None, "average")
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\], got 1.5"):
        tf.losses.sigmoid_cross_entropy(y, p, None, 1.5)
    with pytest.raises(ValueError, match=r"huber_loss: delta must be a number in \(0, inf\], got -1"):
        tf.losses.huber_loss(y, p, None, -1)
    with pytest.raises(TypeError, match="cosine_distance: axis must be an integer"):
        tf.losses.cosine_distance(y, p)
    with pytest.raises(ValueError, match=r"axis 2 is out of range for inputs of shape \[4, 3\]"):
        tf.losses.cosine_distance(y, p, 2)
    with pytest.raises(ValueError, match=r"labels of shape \[3\] do not fit logits of shape \[4, 3\]"):
        tf.losses.softmax_cross_entropy([0, 1, 2], p)
