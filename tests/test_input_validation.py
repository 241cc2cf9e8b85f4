"""Arguments are checked where the op is created: shapes are non-negative integers, axes are
integers, and integer data must fit the dtype it becomes (nothing is truncated or wrapped)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import gpugrad as tf

# --- shapes ---------------------------------------------------------------------------------

x6 = tf.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


@pytest.mark.parametrize("call, exc, text", [
    (lambda: tf.zeros([2.7]), TypeError, "zeros(): shape must be a list of non-negative integers, but shape[0] is float 2.7"),
    (lambda: tf.ones([2, 3.0]), TypeError, "ones(): shape must be a list of non-negative integers, but shape[1] is float 3.0"),
    (lambda: tf.fill([True], 1.0), TypeError, "fill(): shape must be a list of non-negative integers, but shape[0] is bool True"),
    (lambda: tf.zeros([-1, 3]), ValueError, "zeros(): shape must be a list of non-negative integers, but shape[0] is -1"),
    (lambda: tf.zeros("ab"), TypeError, "zeros(): shape must be a list of non-negative integers, but got str 'ab'"),
    (lambda: tf.reshape(x6, [2.9, 3]), TypeError, "reshape(): shape must be a list of non-negative integers (or -1 for a size to infer), but shape[0] is float 2.9"),
    (lambda: tf.reshape(x6, [-2, -3]), ValueError, "reshape(): shape must be a list of non-negative integers (or -1 for a size to infer), but shape[0] is -2"),
    (lambda: tf.tensor([1, 2], shape=[2.0]), TypeError, "tensor(): shape must be a list of non-negative integers, but shape[0] is float 2.0"),
    (lambda: tf.broadcast_to(x6, [1.5, 6]), TypeError, "broadcast_to(): shape must be"),
    (lambda: tf.random_normal([-3], seed=0), ValueError, "random_normal(): shape must be a list of non-negative integers, but shape[0] is -3"),
    (lambda: tf.random_uniform([2.5], seed=0), TypeError, "random_uniform(): shape must be"),
    (lambda: tf.tile(x6, [1.5]), TypeError, "tile(): reps must be a list of non-negative integers, but reps[0] is float 1.5"),
    (lambda: tf.tile(x6, [-2]), ValueError, "tile(): reps must be a list of non-negative integers, but reps[0] is -2"),
    (lambda: tf.slice(x6, [1.0], [2]), TypeError, "slice(): begin must be a list of non-negative integers, but begin[0] is float 1.0"),
    (lambda: tf.slice(x6, [1], [2.5]), TypeError, "slice(): size must be a list of non-negative integers (or -1 for a size to infer), but size[0] is float 2.5"),
    (lambda: tf.pad(x6, [[1.5, 0]]), TypeError, "pad(): paddings[0] must be a list of non-negative integers, but paddings[0][0] is float 1.5"),
    (lambda: tf.eye(2.5), TypeError, "eye(): num_rows must be an integer, but got float 2.5"),
    (lambda: tf.linspace(0, 1, 2.5), TypeError, "linspace(): num must be an integer, but got float 2.5"),
])
def test_bad_shape_is_refused_naming_the_argument(call, exc, text):
    with pytest.raises(exc, match=re.escape(text)):
        call()


def test_integer_shapes_of_any_integer_type_still_work():
    assert tf.zeros([2, 3]).shape == (2, 3)
    assert tf.zeros(3).shape == (3,)
    assert tf.zeros([]).shape == ()
    assert tf.zeros((np.int64(2), np.int32(3))).shape == (2, 3)
    assert tf.zeros(np.array([2, 3])).shape == (2, 3)
    assert tf.reshape(x6, [-1, 3]).shape == (2, 3)
    assert tf.slice(x6, [1], [-1]).shape == (5,)
    assert tf.zeros([0, 3]).shape == (0, 3)


# --- axes -----------------------------------------------------------------------------------

x23 = tf.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])


@pytest.mark.parametrize("call, text", [
    (lambda: tf.sum(x23, 1.0), "sum(): axis must be an integer or a list of integers, but got float 1.0"),
    (lambda: tf.max(x23, [0, 1.0]), "max(): axis must be an integer or a list of integers, but got float 1.0 in axis=[0, 1.0]"),
    (lambda: tf.mean(x23, "1"), "mean(): axis must be an integer or a list of integers, but got str '1'"),
    (lambda: tf.argmax(x23, 0.0), "argmax(): axis must be an integer"),
    (lambda: tf.expand_dims(x23, 1.0), "expand_dims(): axis must be an integer"),
    (lambda: tf.transpose(x23, [1.0, 0]), "transpose(): perm must be an integer or a list of integers, but got float 1.0"),
    (lambda: tf.concat([x23, x23], 0.5), "concat(): axis must be an integer"),
    (lambda: tf.softmax(x23, 1.0), "softmax(): axis must be an integer"),
    (lambda: tf.squeeze(x23, True), "squeeze(): axis must be an integer"),
])
def test_non_integer_axis_is_refused_naming_the_argument(call, text):
    with pytest.raises(TypeError, match=re.escape(text)):
        call()


def test_integer_axes_still_work():
    np.testing.assert_allclose(tf.sum(x23, np.int64(1)).numpy(), [6, 15])
    np.testing.assert_allclose(tf.sum(x23, (0, -1)).numpy(), 21)
    assert tf.transpose(x23, [-1, 0]).shape == (3, 2)


# --- integer data ------------------------------------------------------------------------------


@pytest.mark.parametrize("call, value, dtype", [
    (lambda: tf.tensor(np.array([1, 2**33 + 5])), "8589934597", "int32"),
    (lambda: tf.tensor(np.array([4_000_000_000], dtype=np.uint32)), "4000000000", "int32"),
    (lambda: tf.tensor(np.array([2**63], dtype=np.uint64)), "9223372036854775808", "int32"),
    (lambda: tf.tensor([2**40], dtype="int32"), "1099511627776", "int32"),
    (lambda: tf.scalar(-2**31 - 1, "int32"), "-2147483649", "int32"),
    (lambda: tf.tensor([1.5e10], dtype="int32"), "15000000000.0", "int32"),
    (lambda: tf.tensor([2**70], dtype="int32"), "1180591620717411303424", "int32"),
    (lambda: tf.tensor([2**200]), "16069380442", "float32"),
    (lambda: tf.fill([2], 2**40, "int32"), "1099511627776", "int32"),
    (lambda: tf.fill([2], np.int64(2**40), "int32"), "1099511627776", "int32"),
    (lambda: tf.tensor([1, 2], dtype="int32") + 2**40, "1099511627776", "int32"),
])
def test_out_of_range_integer_is_an_error_naming_value_and_dtype(call, value, dtype):
    with pytest.raises(ValueError, match=re.escape(f"the value {value}") + r".* does not fit in "
                       + re.escape(dtype)):
        call()


def test_in_range_integers_and_big_python_ints_as_floats():
    t = tf.tensor(np.array([-5, 2**31 - 1]))
    assert t.dtype == "int32" and t.numpy().tolist() == [-5, 2**31 - 1]
    assert tf.tensor(np.array([7], dtype=np.uint32)).numpy().tolist() == [7]
    big = tf.tensor([2**70])  # a Python int beyond int64 is a fine float32
    assert big.dtype == "float32"
    assert big.numpy().tolist() == [float(np.float32(2**70))]
    assert tf.scalar(2**70).item() == float(np.float32(2**70))
    assert tf.tensor([2**70, 1.5], dtype="float64").numpy().tolist() == [2.0**70, 1.5]
