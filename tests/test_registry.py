"""The variable registry: the default var_list costs the same however many variables are
registered, automatic names never collide with names users chose, and apply_gradients names
the variable whose gradient it cannot use."""
from __future__ import annotations

import re
import sys
import uuid

import numpy as np
import pytest

import gpugrad as tf


def _calls_made(fn) -> int:
    """Python and C function calls fn makes: a measure of work that does not depend on timing."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_default_var_list_work_does_not_grow_with_the_registry():
    """variable_grads(f) scanned (and sorted) every registered variable per call: 18 ms per
    call with 10,000 registered. It now looks only at the variables f read."""
    p = tf.variable(tf.tensor1d([1.0, 2.0]), name=f"p_{uuid.uuid4().hex}")
    f = lambda: tf.sum(p * p)   # noqa: E731
    crowd = []
    try:
        for _ in range(3):
            tf.variable_grads(f)   # warm: plan caches filled
        few = min(_calls_made(lambda: tf.variable_grads(f)) for _ in range(3))
        crowd = [tf.variable(tf.tensor1d([0.0]), trainable=k % 2 == 0) for k in range(10_000)]
        many = min(_calls_made(lambda: tf.variable_grads(f)) for _ in range(3))
        value, grads = tf.variable_grads(f)
        assert list(grads) == [p.name] and value.item() == 5.0
    finally:
        for v in crowd:
            v.dispose()
        p.dispose()
    assert many <= few + 20, f"{few} calls with few variables registered, {many} with 10,000"


def test_default_var_list_still_checks_for_trainable_variables():
    tf.dispose_variables()
    frozen = tf.variable(tf.tensor1d([1.0]), trainable=False)
    try:
        with pytest.raises(ValueError, match=re.escape("but none of the 1 variables is trainable.")):
            tf.variable_grads(lambda: frozen.sum())
        frozen.trainable = True   # the flag is tracked as it changes
        _, grads = tf.variable_grads(lambda: frozen.sum())
        assert list(grads) == [frozen.name]
        frozen.trainable = False
        with pytest.raises(ValueError, match=re.escape("none of the 1 variables is trainable.")):
            tf.variable_grads(lambda: frozen.sum())
    finally:
        frozen.dispose()
    with pytest.raises(ValueError, match=re.escape("none of the 0 variables is trainable.")):
        tf.variable_grads(lambda: tf.scalar(1.0))


def test_collected_trainable_variable_stops_counting():
    import gc
    tf.dispose_variables()
    tf.variable(tf.tensor1d([1.0]))   # registered weakly: collected at once
    gc.collect()
    with pytest.raises(ValueError, match=re.escape("none of the 0 variables is trainable.")):
        tf.variable_grads(lambda: tf.scalar(1.0))


def test_default_list_key_order_is_kept():
    """Integer-like names first (ascending), then the others in registration order."""
    tag = uuid.uuid4().hex
    b = tf.variable(tf.tensor1d([1.0]), name=f"b_{tag}")
    auto = tf.variable(tf.tensor1d([2.0]))
    a = tf.variable(tf.tensor1d([3.0]), name=f"a_{tag}")
    try:
        _, grads = tf.variable_grads(lambda: tf.sum(a * b * auto))
        assert list(grads) == [auto.name, b.name, a.name]
    finally:
        for v in (a, b, auto):
            v.dispose()


def test_auto_names_skip_names_users_chose():
    probe = tf.variable(tf.tensor1d([0.0]))
    upcoming = [str(int(probe.name) + k) for k in (1, 2)]
    taken = [tf.variable(tf.tensor1d([1.0]), name=n) for n in upcoming]
    made = []
    try:
        made = [tf.variable(tf.tensor1d([2.0])) for _ in range(3)]   # TF.js throws here
        names = [v.name for v in made]
        assert not set(names) & set(upcoming)
        assert len(set(names)) == 3 and all(n.isdigit() for n in names)
    finally:
        for v in [probe, *taken, *made]:
            v.dispose()


@pytest.mark.parametrize("bad, exc, detail", [
    ("abc", TypeError, "Unsupported dtype"),
    ([[1.0], [2.0, 3.0]], ValueError, "ragged"),
    (object(), TypeError, "Unsupported dtype 'object'"),
])
def test_apply_gradients_names_the_variable_with_the_bad_gradient(bad, exc, detail):
    good = tf.variable(tf.tensor1d([1.0, 2.0]), name=f"good_{uuid.uuid4().hex}")
    v = tf.variable(tf.tensor1d([1.0, 2.0]), name=f"v_{uuid.uuid4().hex}")
    try:
        opt = tf.train.sgd(0.1)
        with pytest.raises(exc, match=re.escape(f"the gradient for variable {v.name!r} cannot be "
                                                "made a tensor") + ".*" + re.escape(detail)):
            opt.apply_gradients({good.name: tf.tensor1d([1.0, 1.0]), v.name: bad})
        # checked before anything is written
        np.testing.assert_array_equal(good.numpy(), [1.0, 2.0])
        np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    finally:
        good.dispose()
        v.dispose()
