"""gpugrad.debug_nans (gpugrad/training/debug.py): the first non-finite gradient raises, naming its
variable, in variable_grads / compute_gradients and before an optimizer writes anything."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import gpugrad as tf


@pytest.fixture
def nans_on():
    previous = tf.debug_nans(True)
    yield
    tf.debug_nans(previous)


@pytest.fixture
def wv():
    w = tf.variable(tf.tensor1d([1.0, 0.0, 4.0]), name="dbg_w")   # sqrt'(0) = inf
    v = tf.variable(tf.tensor1d([2.0]), name="dbg_v")
    yield w, v
    w.dispose()
    v.dispose()


def f_of(w, v):
    return lambda: w.sqrt().sum() + v.square().sum()


def snap(t):
    return np.array(t.numpy())


def test_off_by_default_nan_gradients_pass(wv):
    assert tf.debug_nans() is False
    w, v = wv
    _, grads = tf.variable_grads(f_of(w, v))
    assert np.isinf(grads["dbg_w"].numpy()[1])


def test_variable_grads_names_the_variable_and_the_first_bad_element(backend, nans_on, wv):
    w, v = wv
    with pytest.raises(FloatingPointError,
                       match=r"variable_grads: the gradient for variable 'dbg_w' \(shape \[3\], float32\) "
                             r"has 1 non-finite value\(s\), the first inf at index \[1\]"):
        tf.variable_grads(f_of(w, v))
    with pytest.raises(FloatingPointError, match="'dbg_w'"):
        tf.variableGrads(f_of(w, v))
    _, grads = tf.variable_grads(f_of(w, v), [v])    # v's gradient is finite: no error
    assert grads["dbg_v"].item() == 4.0


def test_a_non_finite_value_with_finite_gradients(nans_on, wv):
    w, v = wv
    with pytest.raises(FloatingPointError, match=r"the value of f .* the first -inf .* its gradients are finite"):
        tf.variable_grads(lambda: v.sum() + tf.log(tf.scalar(0.0)), [v])


def test_compute_gradients_checks_too(nans_on, wv):
    w, v = wv
    with pytest.raises(FloatingPointError, match="the gradient for variable 'dbg_w'"):
        tf.train.sgd(0.1).compute_gradients(f_of(w, v))


@pytest.mark.parametrize("how", ["apply_gradients", "minimize"])
def test_optimizers_refuse_a_nan_step_and_change_nothing(backend, wv, how):
    w, v = wv
    opt = tf.train.adam(0.1)
    opt.minimize(lambda: v.square().sum(), var_list=[v])
    before = snap(w), snap(v), [x["tensor"].numpy() for x in opt.get_weights()]
    grads = {"dbg_v": tf.tensor1d([1.0]), "dbg_w": tf.tensor1d([0.0, np.nan, 1.0])}
    previous = tf.debug_nans(True)
    try:
        with pytest.raises(FloatingPointError, match=rf"AdamOptimizer.{how}: the gradient for variable "
                                                     r"'dbg_w' .* the first nan at index \[1\]. Nothing was updated"):
            if how == "apply_gradients":
                opt.apply_gradients(grads)
            else:
                opt.minimize(lambda: (w * tf.tensor1d([0.0, np.nan, 1.0])).sum() + v.sum())
    finally:
        tf.debug_nans(previous)
    np.testing.assert_array_equal(snap(w), before[0])
    np.testing.assert_array_equal(snap(v), before[1])
    assert opt.iterations == 1
    for got, want in zip([x["tensor"].numpy() for x in opt.get_weights()], before[2]):
        np.testing.assert_array_equal(got, want)
    opt.apply_gradients(grads)   # with the check off, the NaN goes through, as in TF.js
    assert np.isnan(w.numpy()[1])


def test_the_switch(nans_on):
    assert tf.debug_nans() is True
    assert tf.debug_nans(False) is True and tf.debug_nans() is False
    with pytest.raises(TypeError, match="enabled must be True or False"):
        tf.debug_nans("yes")


def test_inside_another_differentiation_nothing_is_read_back(nans_on):
    x = tf.variable(tf.scalar(3.0), name="dbg_nested")
    # variable_grads inside grad: its gradients are graph there, not values to check
    outer = tf.grad(lambda s: tf.variable_grads(lambda: x * x * s, [x]).grads["dbg_nested"])
    assert outer(tf.scalar(2.0)).item() == pytest.approx(6.0)
    x.dispose()


def test_environment_variable_turns_it_on():
    env = dict(os.environ, GPUGRAD_DEBUG_NANS="1", GPUGRAD_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", "import gpugrad; print(gpugrad.debug_nans())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
