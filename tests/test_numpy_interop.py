"""numpy on gpugrad tensors cannot silently cut the graph: ufuncs gpugrad has run as its ops
(and stay differentiable); other numpy functions raise, naming the op to use."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpugrad as tf


def test_a_numpy_ufunc_inside_f_stays_differentiable(backend):
    p = tf.variable(tf.tensor1d([0.5, 2.0]))
    value, grads = tf.variable_grads(lambda: np.exp(p).mul(np.tanh(p)).sum(), [p])
    x = np.array([0.5, 2.0])
    expected = np.exp(x) * np.tanh(x) + np.exp(x) * (1 - np.tanh(x) ** 2)
    np.testing.assert_allclose(grads[p.name].numpy(), expected, rtol=1e-5)
    p.dispose()


@pytest.mark.parametrize("ufunc,op", [
    (np.exp, tf.exp), (np.log, tf.log), (np.sqrt, tf.sqrt), (np.tanh, tf.tanh),
    (np.sin, tf.sin), (np.negative, tf.neg), (np.absolute, tf.abs), (np.square, tf.square)])
def test_unary_ufuncs_are_gpugrad_ops(ufunc, op):
    x = tf.tensor1d([0.5, 2.0])
    out = ufunc(x)
    assert isinstance(out, tf.Tensor)
    np.testing.assert_allclose(out.numpy(), op(x).numpy(), rtol=1e-6)
    g = tf.grad(lambda t: ufunc(t).sum())(x)
    np.testing.assert_allclose(g.numpy(), tf.grad(lambda t: op(t).sum())(x).numpy(), rtol=1e-6)


def test_binary_ufuncs_and_operators_with_arrays():
    x = tf.tensor1d([1.0, 4.0])
    a = np.array([2.0, 3.0], np.float32)
    for out, expected in ((np.add(a, x), [3, 7]), (np.multiply(x, a), [2, 12]),
                          (np.maximum(x, 2.0), [2, 4]), (a - x, [1, -1]), (a * x, [2, 12]),
                          (np.float32(2) * x, [2, 8]), (np.power(x, 2), [1, 16]),
                          (np.true_divide(x, a), [0.5, 4 / 3])):
        assert isinstance(out, tf.Tensor)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert (np.ones((1, 2), np.float32) @ x).shape == (1,)
    assert np.greater(x, 2).array() == [False, True]


def test_conversion_still_works():
    x = tf.tensor1d([1.0, 2.0])
    assert isinstance(np.asarray(x), np.ndarray) and np.asarray(x).tolist() == [1, 2]
    assert np.array(x, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("call,suggestion", [
    (lambda x: np.sum(x), "tf.sum"), (lambda x: np.mean(x), "tf.mean"),
    (lambda x: np.reshape(x, (2, 1)), "tf.reshape"), (lambda x: np.concatenate([x, x]), "tf.concat"),
    (lambda x: np.add.reduce(x), "tf.sum"), (lambda x: np.clip(x, 0, 1), "tf.clip_by_value"),
    (lambda x: np.cumsum(x), "tf.cumsum"), (lambda x: np.add.accumulate(x), "tf.cumsum"),
    (lambda x: np.take(x, [0]), "tf.gather"), (lambda x: np.flip(x), "tf.reverse")])
def test_other_numpy_functions_name_the_op(call, suggestion):
    with pytest.raises(TypeError, match=re.escape(f"Use {suggestion}(...) instead")):
        call(tf.tensor1d([1.0, 2.0]))


@pytest.mark.parametrize("call", [lambda x: np.arctan2(x, x), lambda x: np.sort(x),
                                  lambda x: np.maximum.accumulate(x)])
def test_numpy_functions_without_an_op_say_so(call):
    with pytest.raises(TypeError, match=r"gpugrad has no op for it.*t\.numpy\(\)|no gradient"):
        call(tf.tensor1d([1.0, 2.0]))


def test_out_argument_is_refused():
    with pytest.raises(TypeError, match="out"):
        np.exp(tf.tensor1d([1.0]), out=np.empty(1, np.float32))
