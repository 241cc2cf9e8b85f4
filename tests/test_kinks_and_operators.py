"""Elementwise == and !=, and the gradient conventions at pow's and relu6's kinks."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.runtime import engine


def T(values):
    return tf.tensor(values, dtype="float64")


# --- == and != -------------------------------------------------------------------------------


def test_eq_and_ne_are_elementwise(backend):
    x = tf.tensor([0.0, 1.0, 2.0])
    assert (x == 0).dtype == "bool"
    np.testing.assert_array_equal((x == 0).numpy(), [True, False, False])
    np.testing.assert_array_equal((x != 0).numpy(), [False, True, True])
    np.testing.assert_array_equal((x == tf.tensor([0.0, 5.0, 2.0])).numpy(), [True, False, True])
    np.testing.assert_array_equal((0 == x).numpy(), [True, False, False])
    np.testing.assert_array_equal((x == [2.0, 1.0, 0.0]).numpy(), [False, True, False])
    # the reason: where(x == 0, ...) picked a whole branch from Python identity before
    np.testing.assert_array_equal(tf.where(x == 0, 1.0, 2.0).numpy(), [1.0, 2.0, 2.0])
    np.testing.assert_array_equal(tf.where(x != 0, 1.0, 2.0).numpy(), [2.0, 1.0, 1.0])


def test_eq_broadcasts_and_variables_compare_by_value(backend):
    v = tf.variable(tf.tensor([[1.0, 2.0], [3.0, 1.0]]))
    try:
        np.testing.assert_array_equal((v == tf.tensor([1.0, 2.0])).numpy(), [[True, True], [False, False]])
        np.testing.assert_array_equal((v != 1).numpy(), [[False, True], [True, False]])
    finally:
        v.dispose()


def test_eq_with_non_tensor_objects_falls_back_to_identity():
    x = tf.tensor([1.0])
    assert (x == None) is False  # noqa: E711 - the point of the test
    assert (x != None) is True  # noqa: E711
    assert (x == "a") is False
    assert x in [x]          # identity first, as for any object


def test_tensors_stay_hashable_by_identity():
    a, b = tf.tensor([1.0]), tf.tensor([1.0])
    assert hash(a) == object.__hash__(a)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and len({a, b, a}) == 2
    nan = tf.variable(tf.scalar(math.nan))  # NaN != NaN must not lose a dict entry
    try:
        assert {nan: 1}[nan] == 1
    finally:
        nan.dispose()


def test_engine_keeps_working_with_elementwise_eq(backend):
    """The engine's own lists of tensors and optimizer state keyed by variables."""
    x = tf.tensor([2.0, 2.0])
    a, b = tf.exp(x), tf.exp(x)       # equal values, distinct tensors
    engine.realize([a, b, a])
    np.testing.assert_allclose(a.numpy(), b.numpy())
    p = tf.variable(tf.tensor([1.0, math.nan]))
    q = tf.variable(tf.tensor([1.0, math.nan]))
    try:
        opt = tf.train.momentum(0.1, 0.9)
        for _ in range(2):
            opt.minimize(lambda: tf.sum(p * 2.0) + tf.sum(q * 3.0), var_list=[p, q])
        assert opt.step_count(p) == 2 and opt.step_count(q) == 2
        assert len(opt._states) == 2
        plan = tf.explain(lambda: tf.sum(p * p) + tf.sum(q * q), [p, q])
        assert "grad" in str(plan)
        with pytest.raises(ValueError, match=r"shape of tensors\[1\]"):
            tf.concat([tf.zeros([2, 2]), tf.zeros([2, 3])], 0)
    finally:
        p.dispose()
        q.dispose()


# --- pow -------------------------------------------------------------------------------------


def test_pow_exponent_gradient_is_zero_at_non_positive_base(backend):
    # TF.js gives 0 where the base is <= 0 (log is undefined there); gpugrad gave NaN
    base = T([0.0, -2.0, -3.0, 2.0])
    exponent = T([2.0, 2.0, 3.0, 3.0])
    _, g_exp = tf.grads(tf.pow)([base, exponent])
    np.testing.assert_allclose(g_exp.numpy(), [0.0, 0.0, 0.0, 8.0 * math.log(2.0)])


def test_pow_base_gradient_at_zero_to_the_zero(backend):
    # x^0 is the constant 1: its derivative is 0 everywhere, also at 0^0 (JAX, PyTorch)
    g_base, _ = tf.grads(tf.pow)([T([0.0, 3.0, -1.0]), T([0.0, 0.0, 0.0])])
    np.testing.assert_array_equal(g_base.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(tf.grad(lambda x: tf.pow(x, 0.0))(T([0.0])).numpy(), [0.0])


def test_pow_gradients_unchanged_elsewhere(backend):
    g_base, g_exp = tf.grads(tf.pow)([T([2.0, 0.5, -2.0]), T([3.0, -1.5, 2.0])])
    np.testing.assert_allclose(g_base.numpy(), [12.0, -1.5 * 0.5 ** -2.5, -4.0])
    np.testing.assert_allclose(g_exp.numpy()[:2], [8.0 * math.log(2.0), 0.5 ** -1.5 * math.log(0.5)])
    # second derivatives stay finite and right away from the kinks
    np.testing.assert_allclose(tf.grad(tf.grad(lambda x: tf.pow(x, 3.0)))(T([2.0])).numpy(), [12.0])
    np.testing.assert_allclose(tf.grad(tf.grad(lambda y: tf.pow(T([2.0]), y)))(T([1.5])).numpy(),
                               [2.0 ** 1.5 * math.log(2.0) ** 2])


# --- relu6 -----------------------------------------------------------------------------------


def test_relu6_kinks(backend):
    # relu6'(0) = 0 like relu'(0) (TF.js: step(x) * (x <= 6)), relu6'(6) = 1
    g = tf.grad(tf.relu6)(T([0.0, 6.0, 3.0, -1.0, 7.0])).numpy()
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(tf.relu6(T([math.nan, -1.0, 3.0, 7.0])).numpy(), [math.nan, 0.0, 3.0, 6.0])
