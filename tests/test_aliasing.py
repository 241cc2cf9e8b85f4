"""No tensor a gradient call returns shares memory with a variable, an input or another
returned tensor, on the first (traced) or any later (cached) call; tensors made from numpy
arrays own their data; .numpy() never lets a write reach a variable or a tensor."""
from __future__ import annotations

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.runtime import engine


def host(t):
    """The tensor's buffer on the host without a copy where it lives there (numpy backend)."""
    buf = t.data_buffer()
    return buf if isinstance(buf, np.ndarray) else None


def assert_disjoint(*tensors):
    """No two of these tensors share memory (device pointers on the CuPy backend)."""
    ranges = []
    for t in tensors:
        buf = t._node().buf if t._node().buf is not None else t.data_buffer()
        start = buf.__array_interface__["data"][0] if isinstance(buf, np.ndarray) else buf.data.ptr
        ranges.append((start, start + buf.nbytes, t))
    for i, (s1, e1, _) in enumerate(ranges):
        for s2, e2, _ in ranges[i + 1:]:
            assert e1 <= s2 or e2 <= s1 or s1 == e1 or s2 == e2, "two results share memory"


def test_value_of_times_one_never_aliases_the_variable(backend, variables):
    """f = v * 1.0: the second (cached) call returned v's own buffer as the value, so the next
    apply_gradients changed a result the caller held."""
    v = variables(3.0)
    opt = tf.train.sgd(0.5)
    values = []
    for _ in range(4):
        value, grads = tf.variable_grads(lambda: v * 1.0)
        assert_disjoint(value, v, grads[v.name])
        values.append(value)
        opt.apply_gradients(grads)
    assert [t.item() for t in values] == [3.0, 2.5, 2.0, 1.5]
    assert v.item() == 1.0


def test_f_returning_the_variable_itself(backend, variables):
    v = variables(2.0)
    for _ in range(3):
        value, grads = tf.variable_grads(lambda: v)
        assert_disjoint(value, v, grads[v.name])
        assert value.item() == 2.0 and grads[v.name].item() == 1.0


def test_gradient_that_is_another_variable_is_a_copy(backend, variables):
    """d sum(p * q) / dp is q itself (1 * q): it was returned as q's own buffer."""
    p, q = variables([1.0, 2.0]), variables([3.0, 4.0])
    opt = tf.train.sgd(1.0)
    for step in range(3):
        value, grads = tf.variable_grads(lambda: tf.sum(p * q), [p, q])
        assert_disjoint(value, p, q, grads[p.name], grads[q.name])
        held = grads[p.name]
        before = held.numpy().copy()
        opt.apply_gradients(grads)  # updates q in place
        np.testing.assert_array_equal(held.numpy(), before)


def test_equal_gradients_are_separate_buffers(backend, variables):
    """The two gradients of sum(p + q) are one lazy tensor (dy): they came back as one buffer."""
    p, q = variables([1.0, 2.0]), variables([3.0, 4.0])
    for _ in range(3):
        _, grads = tf.variable_grads(lambda: tf.sum(p + q), [p, q])
        assert grads[p.name] is not grads[q.name]
        assert_disjoint(grads[p.name], grads[q.name])
        np.testing.assert_array_equal(grads[p.name].numpy(), [1.0, 1.0])


def test_structurally_equal_outputs_of_one_plan(backend):
    x = tf.tensor([1.0, 2.0])
    a, b = tf.exp(x), tf.exp(x)
    engine.realize([a, b])
    assert_disjoint(a, b)
    s = tf.stop_gradient(a)
    engine.realize([s, tf.stop_gradient(a)])
    assert_disjoint(a, s)


def test_grad_family_returns_tensors_of_their_own(backend):
    x, w = tf.tensor([1.0, 2.0]), tf.tensor([3.0, 4.0])
    gx, gw = tf.grads(lambda a, b: tf.sum(a * b))([x, w])   # gx is w, gw is x, mathematically
    assert gx is not w and gw is not x
    assert_disjoint(gx, gw, x, w)
    value, grads = tf.value_and_grads(lambda a, b: tf.sum(a + b))([x, w])
    assert_disjoint(value, *grads, x, w)
    value, dx = tf.value_and_grad(lambda a: tf.exp(a))(x)   # dx = 1 * exp(a) = the value
    assert value is not dx
    assert_disjoint(value, dx, x)


def test_stop_gradient_of_a_variable_is_a_copy(backend, variables):
    v = variables([1.0, 2.0])
    s = tf.stop_gradient(v)
    s.realize()
    assert_disjoint(s, v)
    tf.train.sgd(1.0).apply_gradients({v.name: tf.tensor([1.0, 1.0])})
    np.testing.assert_array_equal(s.numpy(), [1.0, 2.0])


def test_tensor_from_numpy_owns_its_data(backend):
    a = np.array([1.0, 2.0], dtype=np.float32)
    t, v = tf.tensor(a), tf.variable(tf.tensor(a))
    try:
        a[0] = 100.0
        np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
        np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    finally:
        v.dispose()


def test_numpy_of_a_variable_cannot_write_into_it(backend, variables):
    v = variables([1.0, 2.0])
    out = v.numpy()
    out[0] = 100.0   # a copy: allowed, and v is unchanged
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    tf.train.sgd(1.0).apply_gradients({v.name: tf.tensor([1.0, 1.0])})
    np.testing.assert_array_equal(out, [100.0, 2.0])   # nor does v's update reach the copy
    np.testing.assert_array_equal(np.asarray(v), [0.0, 1.0])


def test_numpy_of_a_tensor_is_read_only_or_a_copy(backend):
    t = tf.exp(tf.tensor([0.0, 0.0]))
    out = t.numpy()
    if out.flags.writeable:   # CuPy: a fresh host copy
        out[0] = 5.0
    else:
        with pytest.raises(ValueError, match="read-only"):
            out[0] = 5.0
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.0])
