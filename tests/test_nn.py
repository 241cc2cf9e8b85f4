"""Layers, initializers, dropout, losses, accuracy and batching (gpugrad/training/nn.py) against numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.training import nn

# --- initializers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal"])
def test_initializers_are_seeded_and_reproducible(name):
    init = nn.INITIALIZERS[name]
    a, b, c = init((20, 30), seed=1), init((20, 30), seed=1), init((20, 30), seed=2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert a.dtype == "float32" and init((3, 2), seed=0, dtype="float64").dtype == "float64"


@pytest.mark.parametrize("name,variance,bound", [
    ("glorot_uniform", 2 / (200 + 300), math.sqrt(6 / (200 + 300))),
    ("glorot_normal", 2 / (200 + 300), 2 * math.sqrt(2 / 500) / 0.87962566103423978),
    ("he_uniform", 2 / 200, math.sqrt(6 / 200)),
    ("he_normal", 2 / 200, 2 * math.sqrt(2 / 200) / 0.87962566103423978),
])
def test_initializer_statistics(name, variance, bound):
    x = nn.INITIALIZERS[name]((200, 300), seed=0).numpy().astype(np.float64)
    assert abs(x.mean()) < 0.01 * math.sqrt(variance) * 10
    assert x.var() == pytest.approx(variance, rel=0.03)
    assert np.abs(x).max() <= bound * (1 + 1e-6)


def test_unknown_initializer_and_activation():
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'.*glorot_uniform"):
        nn.Dense(2, 3, kernel_initializer="glorot")
    with pytest.raises(ValueError, match="Unknown activation 'relu6'.*relu"):
        nn.Dense(2, 3, activation="relu6")


# --- layers ------------------------------------------------------------------------------------------


def _gelu_new(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


@pytest.mark.parametrize("activation,ref", [
    (None, lambda x: x), ("relu", lambda x: np.maximum(x, 0)), ("tanh", np.tanh), ("gelu", _gelu),
    ("gelu_new", _gelu_new)])
def test_dense_forward(backend, activation, ref):
    layer = nn.Dense(4, 3, activation, seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(5, 4))
    expected = ref(x @ layer.kernel.numpy() + layer.bias.numpy())
    np.testing.assert_allclose(layer(tf.tensor(x, dtype="float64")).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_dense_variables_are_seeded_named_and_trainable():
    a, b = nn.Dense(4, 3, seed=7, name="enc_a"), nn.Dense(4, 3, seed=7)
    np.testing.assert_array_equal(a.kernel.numpy(), b.kernel.numpy())
    assert a.kernel.name == "enc_a/kernel" and a.bias.name == "enc_a/bias"
    assert a.trainable_variables == [a.kernel, a.bias]
    np.testing.assert_array_equal(a.bias.numpy(), np.zeros(3))
    assert nn.Dense(4, 3, use_bias=False).trainable_variables[0].shape == (4, 3)
    with pytest.raises(ValueError, match="already registered"):
        nn.Dense(4, 3, name="enc_a")


def test_dense_rejects_a_wrong_input_width():
    layer = nn.Dense(4, 3, seed=0)
    with pytest.raises(ValueError, match=r"expects inputs of shape \[..., 4\], got \[2, 5\]"):
        layer(tf.zeros([2, 5]))
    with pytest.raises(ValueError, match="positive integer"):
        nn.Dense(0, 3)


def test_sequential_collects_variables_and_applies_dropout_only_in_training():
    model = nn.Sequential([nn.Dense(3, 8, "relu", seed=0), nn.Dropout(0.5, seed=0), nn.Dense(8, 2, seed=1)])
    assert len(model.trainable_variables) == 4
    x = tf.ones([4, 3])
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert not np.array_equal(model(x, training=True).numpy(), model(x).numpy())


# --- dropout -----------------------------------------------------------------------------------------


def test_dropout_is_seeded_scaled_and_unbiased(backend):
    x = tf.ones([200, 100])
    a, b = tf.dropout(x, 0.3, seed=5).numpy(), tf.dropout(x, 0.3, seed=5).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.7)}
    assert (a == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert a.mean() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_array_equal(tf.dropout(x, 0.0, seed=1).numpy(), x.numpy())
    np.testing.assert_array_equal(tf.dropout(x, 0.5, training=False).numpy(), x.numpy())


def test_dropout_layer_draws_a_reproducible_stream():
    x = tf.ones([50])
    first, second = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    masks1 = [first(x).numpy() for _ in range(2)]
    masks2 = [second(x).numpy() for _ in range(2)]
    np.testing.assert_array_equal(masks1[0], masks2[0])
    np.testing.assert_array_equal(masks1[1], masks2[1])
    assert not np.array_equal(masks1[0], masks1[1])


def test_dropout_gradient_is_the_mask():
    x = tf.tensor(np.arange(1.0, 11.0), dtype="float64")
    mask = tf.dropout(tf.ones([10], "float64"), 0.4, seed=9).numpy()
    g = tf.grad(lambda v: tf.sum(tf.dropout(v, 0.4, seed=9)))(x)
    np.testing.assert_allclose(g.numpy(), mask)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", None])
def test_dropout_rate_must_be_in_range(rate):
    with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
        tf.dropout(tf.ones([3]), rate)


# --- losses ------------------------------------------------------------------------------------------


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_mean_squared_error(backend):
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    got = tf.losses.mean_squared_error(tf.tensor(y, dtype="float64"), tf.tensor(p, dtype="float64"))
    assert got.item() == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert tf.losses.meanSquaredError is tf.losses.mean_squared_error


@pytest.mark.parametrize("label_kind", ["int-numpy", "int-tensor", "float-tensor", "list", "onehot"])
def test_softmax_cross_entropy_matches_numpy(backend, label_kind):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(7, 5)) * 3
    labels = rng.integers(0, 5, 7)
    onehot = np.eye(5)[labels]
    given = {"int-numpy": labels, "int-tensor": tf.tensor(labels, dtype="int32"),
             "float-tensor": tf.tensor(labels.astype(float)), "list": labels.tolist(),
             "onehot": tf.tensor(onehot, dtype="float64")}[label_kind]
    expected = -np.mean(np.sum(onehot * _log_softmax(logits), -1))
    got = tf.losses.softmax_cross_entropy(given, tf.tensor(logits, dtype="float64"))
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = tf.tensor([[1000.0, 0.0, -1000.0], [-5000.0, 5000.0, 0.0]])
    loss = tf.losses.softmax_cross_entropy([0, 1], logits)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss = tf.losses.softmax_cross_entropy([2, 0], logits)
    assert loss.item() == pytest.approx((2000 + 10000) / 2, rel=1e-6)
    g = tf.grad(lambda z: tf.losses.softmax_cross_entropy([2, 0], z))(logits).numpy()
    assert np.all(np.isfinite(g))


def _central_difference(f, x, eps=1e-6):
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        out[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return out


def test_loss_gradients_against_central_differences(backend):
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 3))
    labels = rng.integers(0, 3, 4)
    soft = rng.dirichlet(np.ones(3), 4)
    target = rng.normal(size=(4, 3))

    def ce(z, y=labels):
        return tf.losses.softmax_cross_entropy(y, tf.tensor(z, dtype="float64")).item()
    losses = {
        "ce-int": (lambda z: tf.losses.softmax_cross_entropy(labels, z), ce),
        "ce-soft": (lambda z: tf.losses.softmax_cross_entropy(tf.tensor(soft, dtype="float64"), z),
                    lambda z: ce(z, tf.tensor(soft, dtype="float64"))),
        "mse": (lambda z: tf.losses.mean_squared_error(tf.tensor(target, dtype="float64"), z),
                lambda z: float(np.mean((z - target) ** 2))),
    }
    for name, (f, f_np) in losses.items():
        got = tf.grad(f)(tf.tensor(logits, dtype="float64")).numpy()
        np.testing.assert_allclose(got, _central_difference(f_np, logits), rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    # and the closed form: (softmax - onehot) / batch
    p = np.exp(_log_softmax(logits))
    got = tf.grad(losses["ce-int"][0])(tf.tensor(logits, dtype="float64")).numpy()
    np.testing.assert_allclose(got, (p - np.eye(3)[labels]) / 4, rtol=1e-12)


@pytest.mark.parametrize("labels,match", [
    ([0, 1, 5], r"labels out of range: \[5\].*\[0, 2\]"),
    ([0, -1, 2], r"labels out of range: \[-1\]"),
    ([0.5, 1, 2], "class labels must be integers"),
    ([0, 1], r"labels of shape \[2\] do not fit logits of shape \[3, 3\].*batch sizes"),
    ([[1, 0, 0]] * 2, r"labels of shape \[2, 3\] do not fit"),
    (np.array([0, 1, np.nan]), "integers"),
])
def test_bad_labels(labels, match):
    logits = tf.zeros([3, 3])
    for fn in (tf.losses.softmax_cross_entropy, tf.accuracy):
        with pytest.raises(ValueError, match=match):
            fn(labels, logits)


def test_mse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"labels shape \[4, 1\] and predictions shape \[3, 1\] must match"):
        tf.losses.mean_squared_error(tf.zeros([4, 1]), tf.zeros([3, 1]))


def test_accuracy(backend):
    logits = tf.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    assert tf.accuracy([1, 0, 0, 1], logits).item() == pytest.approx(0.75)
    assert tf.accuracy(tf.tensor(np.eye(3)[[1, 0, 2, 0]]), logits).item() == pytest.approx(0.75)
    assert tf.metrics.accuracy is tf.accuracy


# --- batching ----------------------------------------------------------------------------------------


def test_batches_cover_the_data_once_in_order_or_seeded_shuffle():
    x = np.arange(10 * 2).reshape(10, 2).astype(np.float32)
    y = np.arange(10)
    plain = list(nn.batches(x, y, 4))
    assert [len(yb) for _, yb in plain] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([yb.numpy() for _, yb in plain]), y)
    assert plain[0][1].dtype == "int32" and plain[0][0].dtype == "float32"
    a = [yb.numpy() for _, yb in nn.batches(x, y, 4, shuffle=True, seed=3)]
    b = [yb.numpy() for _, yb in nn.batches(x, y, 4, shuffle=True, seed=3)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    for xb, yb in nn.batches(x, y, 4, shuffle=True, seed=3):
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy() * 2)   # rows stay paired
    assert [len(xb) for xb in nn.batches(x, batch_size=4, drop_remainder=True)] == [4, 4]


def test_labels_from_batches_are_checked_without_a_read_back(monkeypatch):
    x, y = np.zeros((6, 3), np.float32), np.array([0, 1, 2, 0, 1, 2])
    batches = list(nn.batches(x, y, 3))

    def no_read_back(self):
        raise AssertionError("labels were read back from the backend")
    monkeypatch.setattr(tf.Tensor, "numpy", no_read_back)
    for xb, yb in batches:
        tf.losses.softmax_cross_entropy(yb, tf.zeros([3, 3]))   # builds the graph only
    monkeypatch.undo()
    for _, yb in batches:   # still checked: the error names the bad labels
        with pytest.raises(ValueError, match=r"labels out of range: \[2\]"):
            tf.losses.softmax_cross_entropy(yb, tf.zeros([3, 2]))


def test_batches_bad_input():
    with pytest.raises(ValueError, match="x has 10 examples but y has 9.*mismatched batch sizes"):
        list(nn.batches(np.zeros((10, 2)), np.zeros(9), 4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        list(nn.batches(np.zeros((10, 2)), batch_size=0))


def test_a_small_classifier_learns(backend):
    """Layers, loss and optimizer together: a separable 3-class problem is learned."""
    rng = np.random.default_rng(0)
    centers = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]])
    labels = rng.integers(0, 3, 300)
    x = centers[labels] + rng.normal(scale=0.5, size=(300, 2))
    model = nn.Sequential([nn.Dense(2, 16, "tanh", seed=0), nn.Dense(16, 3, seed=1)])
    opt = tf.train.adam(0.05, var_list=model.trainable_variables)
    for _ in range(5):
        for xb, yb in nn.batches(x, labels, 50, shuffle=True, seed=1):
            opt.minimize(lambda: tf.losses.softmax_cross_entropy(yb, model(xb)))
    assert tf.accuracy(labels, model(tf.tensor(x))).item() > 0.95
