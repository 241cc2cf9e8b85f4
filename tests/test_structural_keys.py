"""The structural key each node carries (tensor.py) and the cached variable_grads path that
finds its plan by it without walking the graph (autodiff._variable_grads_cached): every
repeated call must give what a first call gives, whatever changed between the calls."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf


def grads_of(f, var_list):
    value, grads = tf.variable_grads(f, var_list)
    return float(value.numpy()), {k: (None if g is None else g.numpy()) for k, g in grads.items()}


def fresh(f, var_list):
    tf.clear_caches()
    return grads_of(f, var_list)


def check_repeats(f, var_list, times=3):
    want = fresh(f, var_list)
    for _ in range(times):
        got = grads_of(f, var_list)
        assert got[0] == pytest.approx(want[0])
        assert got[1].keys() == want[1].keys()
        for k in want[1]:
            np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-6)


def test_equal_structures_share_a_key_distinct_leaves_do_not(variables):
    p, q = variables([1.0, 2.0]), variables([3.0, 4.0])
    r = tf.tensor(np.array([5.0, 6.0], np.float32))
    a, b = tf.add(p, r), tf.add(p, r)
    assert a.key == b.key and a is not b
    assert tf.add(q, r).key != a.key      # another leaf of the same shape and dtype
    assert tf.sub(p, r).key != a.key
    assert tf.add(r, p).key != a.key      # operand order
    assert tf.stop_gradient(a).key != a.key


def test_aliasing_changes_the_key(variables):
    p, q = variables([1.0, 2.0]), variables([3.0, 4.0])
    check_repeats(lambda: tf.sum(p * q), [p, q])
    check_repeats(lambda: tf.sum(p * p), [p, q])   # q absent
    # alternating between the two must not mix them up
    for _ in range(3):
        _, g = grads_of(lambda: tf.sum(p * p), [p, q])
        np.testing.assert_allclose(g["p" if False else list(g)[0]], [2.0, 4.0])
        _, g = grads_of(lambda: tf.sum(p * q), [p, q])
        np.testing.assert_allclose(list(g.values())[0], [3.0, 4.0])


def test_assign_between_calls_reads_the_new_value(variables):
    p = variables([1.0, 2.0])
    f = lambda: tf.sum(p * p)  # noqa: E731
    for k in range(4):
        value, grads = tf.variable_grads(f, [p])
        np.testing.assert_allclose(list(grads.values())[0].numpy(), 2 * p.numpy())
        p.assign(tf.tensor(np.array([k + 2.0, k + 3.0], np.float32)))


def test_in_place_update_between_calls(variables):
    p = variables([1.0, 2.0])
    opt = tf.train.sgd(0.1)
    f = lambda: tf.sum(p * p)  # noqa: E731
    for _ in range(4):
        before = p.numpy()
        value, grads = tf.variable_grads(f, [p])
        np.testing.assert_allclose(value.numpy(), (before * before).sum(), rtol=1e-6)
        np.testing.assert_allclose(list(grads.values())[0].numpy(), 2 * before, rtol=1e-6)
        opt.apply_gradients(grads)


def test_stop_gradient_and_identity(variables):
    p, q = variables([1.0, 2.0]), variables([3.0, 4.0])
    check_repeats(lambda: tf.sum(tf.stop_gradient(p) * q + p), [p, q])
    check_repeats(lambda: tf.sum(p * q), [p, q])
    check_repeats(lambda: tf.sum(tf.reshape(p, [2]) * q), [p, q])


def test_lazy_node_made_before_f_is_a_constant(variables):
    p = variables([1.0, 2.0])
    outside = p * 3.0            # made before f: a constant to it
    f_out = lambda: tf.sum(outside * p)  # noqa: E731
    f_in = lambda: tf.sum((p * 3.0) * p)  # noqa: E731
    for _ in range(3):
        _, g_out = grads_of(f_out, [p])
        _, g_in = grads_of(f_in, [p])
        np.testing.assert_allclose(list(g_out.values())[0], [3.0, 6.0])
        np.testing.assert_allclose(list(g_in.values())[0], [6.0, 12.0])


def test_custom_grad_is_never_replayed(variables):
    p = variables([1.0, 2.0])
    calls = []

    def make(scale):
        @tf.custom_grad
        def f(x, save):
            def grad_func(dy, saved):
                calls.append(scale)
                return [dy * scale]
            return {"value": x * 1.0, "grad_func": grad_func}
        return f
    for scale in (2.0, 5.0, 7.0):
        g = make(scale)
        _, grads = grads_of(lambda: tf.sum(g(p)), [p])
        np.testing.assert_allclose(list(grads.values())[0], [scale, scale])
    assert calls == [2.0, 5.0, 7.0]


def test_new_input_tensor_each_call(variables):
    w = variables([1.0, 2.0])
    for k in range(4):
        x = tf.tensor(np.array([k, k + 1.0], np.float32))
        _, grads = grads_of(lambda: tf.sum(w * x), [w])
        np.testing.assert_allclose(list(grads.values())[0], [k, k + 1.0])


def test_disposed_input_fails_on_a_cached_call(variables):
    p = variables([1.0, 2.0])
    x = tf.tensor(np.array([1.0, 1.0], np.float32))
    f = lambda: tf.sum(p * x)  # noqa: E731
    tf.variable_grads(f, [p])
    tf.variable_grads(f, [p])
    lazy = x * 1.0
    tf.dispose(x)
    with pytest.raises(ValueError, match="disposed"):
        tf.variable_grads(lambda: tf.sum(p * lazy), [p])


def test_constants_keep_their_dtype_sign_and_nan_whatever_was_made_before():
    # Constants of Python numbers are looked up by (dtype, type, value) once made, and keyed
    # by value: 0.1 as float32 must not be what a later float64 0.1 gets, 0.0 and -0.0 are
    # == but distinct, NaN is never == itself.
    x32 = tf.tensor(np.ones(3, np.float32))
    x64 = tf.tensor(np.ones(3), dtype="float64")
    for _ in range(2):
        assert (x32 * 0.1).numpy()[0] == np.float32(0.1)
        assert (x64 * 0.1).numpy()[0] == 0.1
        assert (x64 * 3).numpy()[0] == 3.0 and (x32 + 2 ** 40).numpy()[0] == np.float32(2 ** 40 + 1)
        assert np.signbit((x32 * 0.0).numpy()).tolist() == [False] * 3
        assert np.signbit((x32 * -0.0).numpy()).tolist() == [True] * 3
        assert np.isnan((x64 + float("nan")).numpy()).all()
        assert ((x64 * 0.0 + 1.0) * 2.5).numpy().tolist() == [2.5] * 3


def test_plans_keyed_by_a_constant_tell_zero_from_minus_zero(variables):
    v = variables([1.0, 2.0])
    for _ in range(2):
        for c in (0.0, -0.0, 0.0):
            _, grads = tf.variable_grads(lambda: tf.sum(v * c), [v])
            assert np.signbit(grads[v.name].numpy()).tolist() == [np.signbit(c)] * 2


def test_ops_inside_f_make_no_identity_nodes_for_casts_or_broadcasts_they_skip(variables):
    # Inside f an op that returns its input makes an identity node (so y = f(x) is never x
    # itself); matmul's, where's and broadcasting's own operand casts and reshapes must not,
    # where they change nothing: every such node costs a node and a key per call.
    w = variables(np.ones((3, 4)))
    b = variables(np.zeros(4))
    x = tf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    made = []

    def f():
        h = tf.matmul(x, w) + b
        z = tf.where(tf.greater(h, 1.0), h, 0.0) - tf.max(h, 1, True)
        made.append(z)
        return tf.sum(z)
    value, grads = tf.variable_grads(f, [w, b])
    ops, stack = [], [made[0]]
    while stack:
        n = stack.pop()
        ops.append(n.op)
        stack.extend(n.src)
    assert "identity" not in ops and "matmul" in ops and "where" in ops, ops
    h = np.arange(6, dtype=np.float32).reshape(2, 3) @ np.ones((3, 4), np.float32)
    assert float(value.numpy()) == pytest.approx(float(np.sum(np.where(h > 1, h, 0) - h.max(1, keepdims=True))))


def test_a_cached_call_realizes_the_result_f_kept(variables):
    # The key path realizes y only where something besides the call holds it; a y that f
    # kept must come back computed, as on the first call.
    v = variables([1.0, 2.0])
    kept = []

    def f():
        y = tf.sum(v * v)
        kept.append(y)
        return y
    for _ in range(3):
        value, _ = tf.variable_grads(f, [v])
        assert kept[-1].buf is not None and float(kept[-1].numpy()) == float(value.numpy()) == 5.0
