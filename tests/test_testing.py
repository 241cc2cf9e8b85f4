"""gpugrad.testing.check_grads: passes on correct derivatives, fails on wrong ones, any order."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.testing import GradientCheckError, check_grads

rng = np.random.default_rng(5)


@pytest.mark.parametrize("f", [lambda x: tf.exp(x) * tf.sin(x), lambda x: tf.tanh(x) ** 3,
                               lambda x: tf.softmax(x), lambda x: tf.logsumexp(x, 1)])
def test_correct_derivatives_pass_to_third_order(f):
    check_grads(f, [rng.uniform(-1, 1, (3, 4))], order=3)


def test_several_arguments():
    check_grads(lambda a, b: tf.matmul(a, b) * a[:, :1], [rng.normal(size=(3, 2)), rng.normal(size=(2, 5))],
                order=2)


def test_a_wrong_first_derivative_fails_naming_the_order():
    @tf.custom_grad
    def square(x, save):
        save([x])
        return {"value": x * x, "grad_func": lambda dy, saved: dy * saved[0] * 3.0}   # 2x is right
    with pytest.raises(GradientCheckError, match="order 1"):
        check_grads(square, [rng.uniform(-1, 1, 5)], order=1)


def test_a_wrong_second_derivative_fails_only_at_order_two():
    @tf.custom_grad
    def cube(x, save):
        save([x])

        def grad_fn(dy, saved):
            (x,) = saved
            # 3x^2 written so that its own gradient is cut: first order right, second wrong
            return dy * 3 * x * tf.stop_gradient(x)
        return {"value": x * x * x, "grad_func": grad_fn}
    x = rng.uniform(0.5, 1.5, 5)
    check_grads(cube, [x], order=1)
    with pytest.raises(GradientCheckError, match="order 2"):
        check_grads(cube, [x], order=2)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="order must be at least 1"):
        check_grads(tf.exp, [np.ones(2)], order=0)
    with pytest.raises(TypeError, match="must return a tensor"):
        check_grads(lambda x: 3.0, [np.ones(2)])
