"""clip_by_global_norm (gpugrad/training/clipping.py) against numpy, as TF's tf.clip_by_global_norm."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.testing import check_grads


def ref_clip(arrays, clip_norm):
    norm = np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays if a is not None))
    scale = clip_norm / max(norm, clip_norm)
    return [None if a is None else a * scale for a in arrays], norm


@pytest.mark.parametrize("clip_norm", [0.5, 3.0, 100.0])
def test_matches_numpy(backend, clip_norm):
    rng = np.random.default_rng(3)
    arrays = [rng.normal(size=(3, 4)), None, rng.normal(size=5), rng.normal(size=())]
    clipped, norm = tf.clip_by_global_norm(
        [None if a is None else tf.tensor(a, dtype="float64") for a in arrays], clip_norm)
    expected, expected_norm = ref_clip(arrays, clip_norm)
    assert norm.dtype == "float64" and norm.item() == pytest.approx(expected_norm, rel=1e-14)
    assert clipped[1] is None
    for got, want in zip(clipped, expected):
        if want is not None:
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-14)
    total = np.sqrt(sum(np.sum(c.numpy() ** 2) for c in clipped if c is not None))
    assert total <= clip_norm * (1 + 1e-12)


def test_below_the_limit_nothing_changes_and_float32_stays(backend):
    a = tf.tensor1d([0.3, 0.4])
    (c,), norm = tf.clip_by_global_norm([a], 1.0)
    assert c.dtype == "float32" and norm.dtype == "float32"
    np.testing.assert_array_equal(c.numpy(), a.numpy())
    assert norm.item() == pytest.approx(0.5)


def test_a_dict_of_gradients_comes_back_as_a_dict(backend):
    w = tf.variable(tf.tensor1d([3.0, 4.0]), name="clip_w")
    b = tf.variable(tf.scalar(12.0), name="clip_b")
    value, grads = tf.variable_grads(lambda: (w.square().sum() + b.square()) / 2, [w, b])
    clipped, norm = tf.clip_by_global_norm(grads, 1.0)
    assert list(clipped) == ["clip_w", "clip_b"] and norm.item() == pytest.approx(13.0)
    tf.train.sgd(1.0).apply_gradients(clipped)
    np.testing.assert_allclose(w.numpy(), [3 - 3 / 13, 4 - 4 / 13], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), 12 - 12 / 13, rtol=1e-6)
    w.dispose()
    b.dispose()


def test_use_norm_and_non_finite_norms():
    (c,), norm = tf.clip_by_global_norm([tf.tensor1d([1.0, 1.0])], 1.0, use_norm=4.0)
    np.testing.assert_allclose(c.numpy(), [0.25, 0.25])
    assert norm.item() == 4.0
    for bad in (np.inf, np.nan):
        (c, d), norm = tf.clip_by_global_norm([tf.tensor1d([bad, 1.0]), tf.tensor1d([2.0])], 1.0)
        assert np.all(np.isnan(c.numpy())) and np.all(np.isnan(d.numpy()))   # as TF: NaN, not a silent 0


def test_gradients_flow_through_the_clip():
    def f(x, y):
        clipped, _ = tf.clip_by_global_norm([x, y], 1.5)
        return clipped[0] * 2 + clipped[1].sum()
    check_grads(f, [np.array([1.0, -2.0]), np.array([[0.5, 0.7]])], order=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="clip_norm must be a positive finite number, got 0"):
        tf.clip_by_global_norm([tf.ones([2])], 0)
    with pytest.raises(ValueError, match="clip_norm must be a scalar, got shape \\[2\\]"):
        tf.clip_by_global_norm([tf.ones([2])], tf.ones([2]))
    with pytest.raises(TypeError, match="must be a list .*wrap a single tensor in a list"):
        tf.clip_by_global_norm(tf.ones([2]), 1.0)
    with pytest.raises(TypeError, match="tensor 1 is int32; only float32 and float64"):
        tf.clip_by_global_norm([tf.ones([2]), tf.tensor1d([1, 2], dtype="int32")], 1.0)
    with pytest.raises(ValueError, match="use_norm must be a scalar"):
        tf.clip_by_global_norm([tf.ones([2])], 1.0, use_norm=[1.0, 2.0])
