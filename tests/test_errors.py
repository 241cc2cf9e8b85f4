"""Clear errors from ops (TF.js's message text, then detail), unsupported dtypes, recovery
after every error, and IEEE NaN/Inf flowing through variable_grads."""
from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

import gpugrad as tf


@pytest.fixture
def seed_vars():
    p = tf.variable(tf.tensor1d([9.0, 6.0]), name=f"p_{uuid.uuid4().hex}")
    q = tf.variable(tf.tensor1d([7.0, 8.0]), name=f"q_{uuid.uuid4().hex}")
    yield p, q
    p.dispose()
    q.dispose()


def check_seed(p, q):
    """A subsequent variable_grads is correct (the library keeps working)."""
    r = tf.tensor1d([3.0, 4.0])
    value, grads = tf.variable_grads(lambda: p.add(r.square()).mul(q.add(r)).sum(), [p, q])
    assert value.item() == 444
    np.testing.assert_array_equal(grads[p.name].numpy(), [10, 12])
    np.testing.assert_array_equal(grads[q.name].numpy(), [18, 22])
    assert grads[p.name].dtype == "float32"


# --- op errors: (callable, exception type, TF.js text) -------------------------------------------

OP_ERRORS = [
    pytest.param(lambda: tf.add(tf.tensor1d([1.0, 2.0, 3.0]), tf.tensor1d([1.0, 2.0])), ValueError,
                 "Operands could not be broadcast together with shapes 3 and 2.", id="broadcast-add"),
    pytest.param(lambda: tf.tensor1d([1.0, 2.0, 3.0]).mul(tf.tensor1d([1.0, 2.0])), ValueError,
                 "Operands could not be broadcast together with shapes 3 and 2.", id="broadcast-mul-method"),
    pytest.param(lambda: tf.tensor1d([1.0, 2.0, 3.0]) - tf.tensor1d([1.0, 2.0]), ValueError,
                 "Operands could not be broadcast together with shapes 3 and 2.", id="broadcast-operator"),
    pytest.param(lambda: tf.maximum(tf.tensor1d([1.0, 2.0, 3.0]), tf.tensor1d([1.0, 2.0])), ValueError,
                 "Operands could not be broadcast together with shapes 3 and 2.", id="broadcast-maximum"),
    pytest.param(lambda: tf.sum(tf.zeros([2, 2]), 2), ValueError,
                 "All values in axis param must be in range [-2, 2) but got axis 2", id="axis-sum"),
    pytest.param(lambda: tf.zeros([2, 2]).mean(2), ValueError,
                 "All values in axis param must be in range [-2, 2) but got axis 2", id="axis-mean"),
    pytest.param(lambda: tf.max(tf.zeros([2, 2]), [0, 2]), ValueError,
                 "All values in axis param must be in range [-2, 2) but got axis 2", id="axis-max-list"),
    pytest.param(lambda: tf.reshape(tf.zeros([2, 3]), [4]), ValueError,
                 "Size(6) must match the product of shape 4", id="reshape"),
    pytest.param(lambda: tf.zeros([2, 3]).reshape([4]), ValueError,
                 "Size(6) must match the product of shape 4", id="reshape-method"),
    pytest.param(lambda: tf.matmul(tf.zeros([2, 3]), tf.zeros([4, 5])), ValueError,
                 "Error in matMul: inner shapes (3) and (4)", id="matmul"),
    pytest.param(lambda: tf.softmax(tf.scalar(1.0)), ValueError,
                 "All values in axis param must be in range [-0, 0) but got axis -1", id="softmax-scalar"),
]


@pytest.mark.parametrize("call, exc, text", OP_ERRORS)
def test_op_error_message(call, exc, text):
    with pytest.raises(exc, match=re.escape(text)):
        call()


def test_matmul_message_starts_with_tfjs_text():
    with pytest.raises(ValueError) as info:
        tf.matmul(tf.zeros([2, 3]), tf.zeros([4, 5]))
    assert str(info.value).startswith("Error in matMul: inner shapes (3) and (4)")


def test_op_errors_are_raised_eagerly_not_at_realization():
    """Lazy graph, eager errors: the op call raises, before any value is read."""
    with pytest.raises(ValueError):
        tf.tensor1d([1.0, 2.0, 3.0]).add(tf.tensor1d([1.0, 2.0]))


@pytest.mark.parametrize("call, exc, text", OP_ERRORS)
def test_library_keeps_working_after_op_error(seed_vars, call, exc, text):
    p, q = seed_vars
    with pytest.raises(exc):
        call()
    check_seed(p, q)


@pytest.mark.parametrize("call, exc, text", OP_ERRORS)
def test_op_error_inside_f(seed_vars, call, exc, text):
    """The op error surfaces from variable_grads unchanged, and the next call is correct."""
    p, q = seed_vars

    def f():
        p.mul(q)
        call()
        return p.sum()  # pragma: no cover

    for _ in range(2):
        with pytest.raises(exc, match=re.escape(text)):
            tf.variable_grads(f, [p, q])
        check_seed(p, q)
    np.testing.assert_array_equal(p.numpy(), [9, 6])
    np.testing.assert_array_equal(q.numpy(), [7, 8])


def test_broadcast_error_involving_variables_inside_f(seed_vars):
    p, q = seed_vars
    z = tf.variable(tf.tensor1d([1.0, 2.0, 3.0]), name=f"z_{uuid.uuid4().hex}")
    try:
        with pytest.raises(ValueError, match=re.escape("Operands could not be broadcast together with shapes 3 and 2.")):
            tf.variable_grads(lambda: z.add(p).sum(), [z, p])
        check_seed(p, q)
    finally:
        z.dispose()


# --- unsupported dtypes -> TypeError -----------------------------------------------------------

UNSUPPORTED = [
    pytest.param(lambda: tf.tensor([1 + 2j, 3j]), id="complex-list"),
    pytest.param(lambda: tf.tensor(np.array([1 + 2j], dtype=np.complex64)), id="complex64-array"),
    pytest.param(lambda: tf.scalar(1 + 1j), id="complex-scalar"),
    pytest.param(lambda: tf.tensor([1.0, 2.0], dtype=np.complex64), id="complex-dtype-arg"),
    pytest.param(lambda: tf.cast(tf.zeros([2]), "complex64"), id="cast-complex64"),
    pytest.param(lambda: tf.variable(tf.zeros([2]), dtype=complex), id="variable-dtype-complex"),
    pytest.param(lambda: tf.tensor(np.array([object(), object()], dtype=object)), id="object-array"),
    pytest.param(lambda: tf.tensor([object()]), id="object-list"),
    pytest.param(lambda: tf.tensor(["a", "b"]), id="string-list"),
    pytest.param(lambda: tf.tensor("abc"), id="string"),
    pytest.param(lambda: tf.tensor(np.array([b"a"])), id="bytes-array"),
    pytest.param(lambda: tf.zeros([2], dtype="string"), id="zeros-dtype-string"),
    pytest.param(lambda: tf.ones([2], dtype=object), id="ones-dtype-object"),
    pytest.param(lambda: tf.add(tf.zeros([2]), "a"), id="add-string-operand"),
    pytest.param(lambda: tf.add(tf.zeros([2]), np.array([1j, 2j])), id="add-complex-array-operand"),
    pytest.param(lambda: tf.mul(tf.zeros([2]), 1 + 2j), id="mul-complex-scalar-operand"),
]


@pytest.mark.parametrize("call", UNSUPPORTED)
def test_unsupported_dtype_is_type_error(call):
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize("call", [pytest.param(p.values[0], id=p.id) for p in UNSUPPORTED])
def test_unsupported_dtype_message_is_clear(call):
    with pytest.raises(TypeError, match="Unsupported dtype"):
        call()


@pytest.mark.parametrize("call", UNSUPPORTED)
def test_library_keeps_working_after_dtype_error(seed_vars, call):
    p, q = seed_vars
    with pytest.raises(TypeError):
        call()
    check_seed(p, q)


def test_unsupported_dtype_inside_f(seed_vars):
    p, q = seed_vars
    with pytest.raises(TypeError):
        tf.variable_grads(lambda: p.mul(tf.tensor([1j, 2j])).sum(), [p, q])
    check_seed(p, q)


# --- other checks keep the library working ------------------------------------------------------


@pytest.mark.parametrize("call", [
    pytest.param(lambda p, q: tf.variable_grads(lambda: p.square(), [p]), id="rank-1-result"),
    pytest.param(lambda p, q: tf.variable_grads(lambda: 3.0, [p]), id="non-tensor-result"),
    pytest.param(lambda p, q: tf.variable_grads(lambda: p.sum(), []), id="no-trainable"),
    pytest.param(lambda p, q: tf.variable_grads(lambda: p.sum(), [p.numpy()]), id="bad-var-list"),
    pytest.param(lambda p, q: p.assign(tf.tensor1d([1.0, 2.0, 3.0])), id="assign-shape"),
    pytest.param(lambda p, q: p.assign(tf.tensor1d([1, 2], dtype="int32")), id="assign-dtype"),
    pytest.param(lambda p, q: tf.grad(lambda x: x.square())(tf.tensor1d([1.0, 2.0]), tf.tensor1d([1.0, 2.0, 3.0])),
                 id="grad-bad-dy"),
])
def test_library_keeps_working_after_api_error(seed_vars, call):
    p, q = seed_vars
    with pytest.raises((TypeError, ValueError)):
        call(p, q)
    np.testing.assert_array_equal(p.numpy(), [9, 6])
    check_seed(p, q)


# --- NaN and Inf are IEEE values -----------------------------------------------------------------


def _vg(f, v):
    value, grads = tf.variable_grads(f, [v])
    return value.item(), grads[v.name].numpy()


def test_nan_and_inf_flow_through_linear():
    v = tf.variable(tf.tensor1d([np.nan, 1.0, np.inf]), name=f"n_{uuid.uuid4().hex}")
    try:
        for _ in range(2):
            value, g = _vg(lambda: v.mul(2).sum(), v)
            assert np.isnan(value)
            np.testing.assert_array_equal(g, [2, 2, 2])
    finally:
        v.dispose()


def test_nan_and_inf_in_gradients():
    v = tf.variable(tf.tensor1d([np.nan, 1.0, np.inf, -np.inf]), name=f"n_{uuid.uuid4().hex}")
    try:
        for _ in range(2):
            value, g = _vg(lambda: v.mul(v).sum(), v)
            assert np.isnan(value)
            assert np.isnan(g[0]) and g[1] == 2 and g[2] == np.inf and g[3] == -np.inf
    finally:
        v.dispose()


def test_inf_value_finite_gradient():
    v = tf.variable(tf.tensor1d([1.0, np.inf]), name=f"n_{uuid.uuid4().hex}")
    try:
        value, g = _vg(lambda: v.mul(3).sum(), v)
        assert value == np.inf
        np.testing.assert_array_equal(g, [3, 3])
    finally:
        v.dispose()


@pytest.mark.parametrize("f, x, value, grad", [
    pytest.param(lambda v: v.sqrt().sum(), [0.0], 0.0, [np.inf], id="sqrt'(0)=inf"),
    pytest.param(lambda v: v.log().sum(), [0.0], -np.inf, [np.inf], id="log(0)"),
    pytest.param(lambda v: v.reciprocal().sum(), [0.0], np.inf, [-np.inf], id="1/x at 0"),
    pytest.param(lambda v: tf.div(1.0, v).sum(), [0.0], np.inf, [-np.inf], id="div at 0"),
    pytest.param(lambda v: v.exp().sum(), [89.0], np.inf, [np.inf], id="exp overflow"),
    pytest.param(lambda v: v.log().sum(), [-1.0], np.nan, [-1.0], id="log of negative"),
    pytest.param(lambda v: v.sqrt().sum(), [-1.0], np.nan, [np.nan], id="sqrt of negative"),
    pytest.param(lambda v: v.mul(0).sum(), [np.inf], np.nan, [0.0], id="inf times zero"),
])
def test_ieee_edge_values(f, x, value, grad):
    v = tf.variable(tf.tensor1d(x), name=f"e_{uuid.uuid4().hex}")
    try:
        for _ in range(2):
            got_value, got_grad = _vg(lambda: f(v), v)
            np.testing.assert_array_equal(np.float32(got_value), np.float32(value))
            np.testing.assert_array_equal(got_grad, np.asarray(grad, np.float32))
    finally:
        v.dispose()


def test_nan_printing_of_value():
    v = tf.variable(tf.tensor1d([np.nan, 1.0]), name=f"n_{uuid.uuid4().hex}")
    try:
        value, grads = tf.variable_grads(lambda: v.sum(), [v])
        assert str(value) == "Tensor\n    NaN"
        assert str(grads[v.name]) == "Tensor\n    [1, 1]"
    finally:
        v.dispose()


def test_nan_does_not_poison_later_calls(seed_vars):
    p, q = seed_vars
    saved = p.numpy().copy()
    p.assign(tf.tensor1d([np.nan, np.inf]))
    value, grads = tf.variable_grads(lambda: p.mul(q).sum(), [p, q])
    assert np.isnan(value.item())
    np.testing.assert_array_equal(grads[p.name].numpy(), [7, 8])
    assert np.isnan(grads[q.name].numpy()[0]) and grads[q.name].numpy()[1] == np.inf
    p.assign(tf.tensor1d(saved))
    check_seed(p, q)


def test_an_axis_checked_once_is_checked_again_for_another_rank():
    # (normalize_axes keeps the answer for an int axis and a rank: never for another rank)
    from gpugrad.api.ops.reductions import normalize_axes
    assert normalize_axes(-1, 3) == (2,) and normalize_axes(-1, 3) == (2,) and normalize_axes(-1, 1) == (0,)
    assert normalize_axes(2, 3) == (2,)
    for axis, rank in ((2, 2), (-3, 2), (0, 0), (-1, 0)):
        with pytest.raises(ValueError, match=re.escape(f"must be in range [-{rank}, {rank}) but got axis {axis}")):
            normalize_axes(axis, rank)
    with pytest.raises(TypeError, match="must be an integer"):
        normalize_axes(True, 2)
    x = tf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(tf.sum(x, -1).numpy(), [3, 12])
    np.testing.assert_array_equal(tf.sum(tf.reshape(x, [6]), -1).numpy(), 15)
