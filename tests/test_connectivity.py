"""An op that changes nothing still connects its result to its input, a tensor passed to a
gradient function is an input whatever made it, and zeros_like/ones_like have a zero
gradient: TF.js gives dy (or zeros) in all these cases, where gpugrad said "not connected"."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpugrad as tf

NOT_CONNECTED = ("Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you "
                 "passed encloses all operations that lead from x to y.")

# Ops that are the identity for the arguments given: each returned its very input before.
IDENTITIES = {
    "mul_1": lambda v: v.mul(1),
    "rmul_1": lambda v: tf.mul(1, v),
    "operator_mul_1": lambda v: v * 1.0,
    "add_0": lambda v: v.add(0),
    "radd_0": lambda v: 0 + v,
    "sub_0": lambda v: v - 0,
    "pow_1": lambda v: tf.pow(v, 1),
    "operator_pow_1": lambda v: v ** 1,
    "reshape_same": lambda v: tf.reshape(v, [3]),
    "flatten_1d": lambda v: tf.flatten(v),
    "squeeze_nothing": lambda v: tf.squeeze(v),
    "transpose_identity": lambda v: tf.transpose(v, [0]),
    "cast_same": lambda v: tf.cast(v, "float32"),
    "broadcast_to_same": lambda v: tf.broadcast_to(v, [3]),
    "slice_all": lambda v: tf.slice(v, [0], [-1]),
    "getitem_all": lambda v: v[:],
    "pad_nothing": lambda v: tf.pad(v, [[0, 0]]),
    "tile_once": lambda v: tf.tile(v, [1]),
    "concat_one": lambda v: tf.concat([v]),
    "sum_no_axes": lambda v: tf.sum(v, []),
    "max_no_axes": lambda v: tf.max(v, []),
    "tensor_of_tensor": lambda v: tf.tensor(v),
    "dropout_not_training": lambda v: tf.nn.dropout(v, 0.5, seed=0, training=False),
    "dropout_rate_0": lambda v: tf.nn.dropout(v, 0.0, seed=0),
}


@pytest.mark.parametrize("name", list(IDENTITIES))
def test_identity_shortcut_gives_dy(backend, name):
    x = tf.tensor([1.0, 2.0, 3.0])
    g = tf.grad(IDENTITIES[name])(x)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0, 1.0])
    dy = tf.tensor([2.0, -1.0, 0.5])
    np.testing.assert_array_equal(tf.grad(IDENTITIES[name])(x, dy).numpy(), dy.numpy())


@pytest.mark.parametrize("reduce", [tf.max, tf.min, tf.sum, tf.prod, tf.mean])
def test_reduction_of_a_scalar_gives_one(backend, reduce):
    np.testing.assert_array_equal(tf.grad(lambda v: reduce(v))(tf.scalar(42.0)).numpy(), 1.0)


def test_identity_shortcut_in_value_and_grad_and_variable_grads(backend):
    v = tf.variable(tf.scalar(3.0))
    try:
        for _ in range(2):  # the traced and the cached call
            value, grads = tf.variable_grads(lambda: v * 1.0)
            assert value.item() == 3.0 and grads[v.name].item() == 1.0
        value, dx = tf.value_and_grad(lambda t: tf.reshape(t, [2]))(tf.tensor([1.0, 2.0]))
        np.testing.assert_array_equal(value.numpy(), [1.0, 2.0])
        np.testing.assert_array_equal(dx.numpy(), [1.0, 1.0])
    finally:
        v.dispose()


def test_returning_x_itself_is_still_not_connected():
    """TF.js: f returning x itself is an error; only ops make the connection."""
    with pytest.raises(ValueError, match=re.escape(NOT_CONNECTED)):
        tf.grad(lambda v: v)(tf.tensor([1.0]))


def test_second_derivative_through_custom_grad_with_identity_shortcut(backend):
    # value x^2 / 2, gradient dy * x: dy is 1, so the first derivative is 1 * x, which the
    # mul shortcut returned as x itself, so grad(grad) failed with "not connected"
    half_square = tf.custom_grad(lambda x, save: {
        "value": x.square().mul(0.5), "grad_func": lambda dy, saved: [dy.mul(x)]})
    x = tf.tensor([-1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tf.grad(lambda t: half_square(t))(x).numpy(), [-1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tf.grad(tf.grad(lambda t: half_square(t)))(x).numpy(), [1.0, 1.0, 1.0])


def test_second_derivative_through_identity_shortcuts(backend):
    # d/dx of grad(x * x) = 2x, taken through reshape/cast/mul-by-1 shortcuts
    f = lambda t: tf.cast(tf.reshape(t * t, [2]), "float32") * 1.0  # noqa: E731
    np.testing.assert_allclose(tf.grad(tf.grad(f))(tf.tensor([1.5, -2.0])).numpy(), [2.0, 2.0])


# --- lazy constants passed as x --------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: tf.ones([3]), lambda: tf.zeros([3]), lambda: tf.fill([3], 2.5),
    lambda: tf.ones_like(tf.tensor([5.0, 6.0, 7.0])), lambda: tf.zeros_like(tf.tensor([5.0, 6.0, 7.0])),
], ids=["ones", "zeros", "fill", "ones_like", "zeros_like"])
def test_constant_tensor_passed_as_x_is_an_input(backend, make):
    x = make()
    np.testing.assert_array_equal(tf.grad(lambda v: tf.neg(v))(x).numpy(), [-1.0, -1.0, -1.0])
    np.testing.assert_allclose(tf.grad(lambda v: tf.sum(v * v))(x).numpy(), 2 * x.numpy())
    ga, gb = tf.grads(lambda a, b: tf.sum(a * b))([x, tf.ones([3])])
    np.testing.assert_allclose(ga.numpy(), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(gb.numpy(), x.numpy())
    value, dx = tf.value_and_grad(lambda v: tf.sum(tf.exp(v)))(x)
    np.testing.assert_allclose(dx.numpy(), np.exp(x.numpy()), rtol=1e-6)


# --- zeros_like / ones_like ------------------------------------------------------------------


@pytest.mark.parametrize("like", [tf.zeros_like, tf.ones_like])
def test_zeros_like_and_ones_like_have_zero_gradient(backend, like):
    x = tf.tensor([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(tf.grad(lambda v: like(v))(x).numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(tf.grad(lambda v: tf.sum(like(v) * 3.0) + tf.sum(v))(x).numpy(),
                                  [1.0, 1.0, 1.0])
    v = tf.variable(tf.tensor([1.0, 2.0]))
    try:  # connected, mathematically zero: the key is present with zeros (TF.js)
        value, grads = tf.variable_grads(lambda: tf.sum(like(v)))
        assert value.item() == (0.0 if like is tf.zeros_like else 2.0)
        np.testing.assert_array_equal(grads[v.name].numpy(), [0.0, 0.0])
    finally:
        v.dispose()


def test_zeros_like_and_ones_like_values_inside_f(backend):
    x = tf.tensor([np.nan, np.inf, -np.inf, 0.0])
    seen = {}

    def f(v):
        seen["zeros"], seen["ones"] = tf.zeros_like(v), tf.ones_like(v)
        return tf.sum(v * seen["zeros"]) + tf.sum(seen["ones"])

    tf.value_and_grad(f)(x)
    np.testing.assert_array_equal(seen["zeros"].numpy(), [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(seen["ones"].numpy(), [1.0, 1.0, 1.0, 1.0])
    assert seen["zeros"].dtype == "float32"
    i = tf.tensor([3, 4], dtype="int32")
    assert tf.grad(lambda v: tf.zeros_like(v))(i).numpy().tolist() == [0.0, 0.0]
