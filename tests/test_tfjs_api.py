"""The TF.js API as TF.js users write it: camelCase names at module level and as methods
(from one table), TF.js's backend name 'cpu', clone, data/array, tensor5d/tensor6d."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.core.tensor import Tensor
from gpugrad.core.tfjs_names import METHOD_ONLY, NOT_TFJS, TFJS_NAMES

NAMESPACES = {"gpugrad": tf.__dict__, "Tensor": None, "tf.losses": vars(tf.losses)}


def _lookup(where: str, name: str):
    if where == "Tensor":
        for klass in Tensor.__mro__:
            if name in vars(klass):
                return vars(klass)[name]
        return None
    return NAMESPACES[where].get(name)


@pytest.mark.parametrize("camel,snake", sorted(TFJS_NAMES.items()))
def test_every_camel_case_name_is_the_snake_case_object(camel, snake):
    found = False
    for where in NAMESPACES:
        target = _lookup(where, snake)
        if target is None or (camel in METHOD_ONLY and where != "Tensor"):
            continue
        found = True
        assert _lookup(where, camel) is target, f"{where}.{camel} is not {where}.{snake}"
    assert found, f"{snake} (for {camel}) exists nowhere: fix the table in gpugrad/core/tfjs_names.py"


def _public_snake_functions():
    names = []
    for name, value in vars(tf).items():
        if name.startswith("_") or "_" not in name.strip("_") or not callable(value):
            continue
        if inspect.isclass(value) or not getattr(value, "__module__", "").startswith("gpugrad"):
            continue
        names.append(name)
    for name, value in vars(tf.losses).items():
        if "_" in name:
            names.append(name)
    return names


def _public_snake_methods():
    names = set()
    for klass in Tensor.__mro__[:-1]:
        for name, value in vars(klass).items():
            if not name.startswith("_") and "_" in name and (callable(value) or isinstance(value, property)):
                names.add(name)
    return sorted(names)


def test_every_public_snake_case_function_has_its_tfjs_alias_or_a_reason():
    snake_names = set(TFJS_NAMES.values())
    missing = [n for n in _public_snake_functions() + _public_snake_methods()
               if n not in snake_names and n not in NOT_TFJS]
    assert not missing, (f"public snake_case names without a TF.js camelCase entry in "
                         f"gpugrad/core/tfjs_names.py (or a reason in NOT_TFJS): {missing}")


def test_the_names_tfjs_users_write():
    a, b = tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1, 0], [0, 1]])
    assert tf.matMul(a, b).array() == [[1, 2], [3, 4]]
    assert tf.expandDims(tf.tensor1d([1, 2]), 1).shape == (2, 1)
    assert tf.randomNormal([3], seed=1).shape == (3,)
    assert tf.zerosLike(a).array() == [[0, 0], [0, 0]]
    assert tf.logSumExp(tf.tensor1d([0, 0])).item() == pytest.approx(np.log(2))
    assert tf.squaredDifference(tf.tensor1d([3]), tf.tensor1d([1])).array() == [4]
    assert tf.variableGrads is tf.variable_grads and tf.customGrad is tf.custom_grad
    assert tf.valueAndGrad is tf.value_and_grad and tf.valueAndGrads is tf.value_and_grads
    assert tf.setBackend is tf.set_backend and tf.getBackend is tf.get_backend
    assert tf.losses.meanSquaredError is tf.losses.mean_squared_error
    assert tf.tensor1d([1, 2]).lessEqual(1).array() == [True, False]
    assert not hasattr(tf, "asType"), "asType is a Tensor method in TF.js, not a function"


def test_set_backend_cpu_is_numpy():
    previous = tf.get_backend()
    try:
        tf.setBackend("cpu")
        assert tf.get_backend() == "numpy"   # gpugrad's name for what runs; 'cpu' is an alias
        assert tf.tensor1d([1, 2]).add(1).array() == [2, 3]
    finally:
        tf.set_backend(previous)
    with pytest.raises(ValueError, match="'cpu'.*selects numpy"):
        tf.set_backend("webgl")


def test_clone_function_and_method():
    v = tf.variable(tf.tensor1d([1.0, 2.0]))
    a = tf.clone(v)
    b = v.clone()
    assert a is not v and b is not v and a.array() == [1, 2] and b.array() == [1, 2]
    a.dispose()
    assert not b.is_disposed and v.array() == [1, 2]   # handles are separate
    tf.train.sgd(1.0).apply_gradients({v.name: tf.tensor1d([1.0, 1.0])})
    assert b.array() == [1, 2] and v.array() == [0, 1]  # its own buffer
    x = tf.tensor1d([1.0, 2.0])
    assert tf.grad(lambda t: tf.clone(t).square().sum())(x).array() == [2, 4]
    assert tf.clone(tf.tensor1d([True, False])).array() == [True, False]
    v.dispose()


def test_data_and_array_as_tfjs():
    t = tf.tensor2d([[1, 2], [3, 4]], dtype="int32")
    for read in (t.data, t.data_sync, t.dataSync):
        flat = read()
        assert isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.tolist() == [1, 2, 3, 4]
    flat = t.data()
    flat[0] = 100                      # a copy: the tensor does not change
    assert t.array() == [[1, 2], [3, 4]]
    for read in (t.array, t.array_sync, t.arraySync):
        assert read() == [[1, 2], [3, 4]]
    assert tf.scalar(2.5).array_sync() == 2.5
    assert tf.tensor1d([True, False]).arraySync() == [True, False]


def test_tensor5d_and_tensor6d():
    assert tf.tensor5d([[[[[1], [2]], [[3], [4]]]]]).shape == (1, 1, 2, 2, 1)
    assert tf.tensor5d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2, 1]).shape == (1, 2, 2, 2, 1)
    assert tf.tensor6d(np.zeros((1, 2, 1, 2, 1, 2))).shape == (1, 2, 1, 2, 1, 2)
    assert tf.tensor6d(list(range(4)), [1, 1, 1, 1, 2, 2], "int32").dtype == "int32"


@pytest.mark.parametrize("make,args,message", [
    (tf.tensor5d, ([1, 2], [1, 2]), "tensor5d() requires shape to have five numbers"),
    (tf.tensor5d, ([[1, 2]],), "tensor5d() requires values to be number[][][][][] or flat/TypedArray"),
    (tf.tensor5d, ([1, 2],), "tensor5d() requires shape to be provided when `values` are a flat array"),
    (tf.tensor6d, ([1], [1, 1, 1, 1, 1]), "tensor6d() requires shape to have six numbers"),
    (tf.tensor6d, (np.zeros((1, 1, 1, 1, 1)),), "tensor6d() requires values to be number[][][][][][] or flat/TypedArray"),
    (tf.tensor6d, ([1],), "tensor6d() requires shape to be provided when `values` are a flat array"),
    (tf.tensor1d, ([[1]],), "tensor1d() requires values to be a flat/TypedArray"),
    (tf.tensor2d, ([1, 2, 3, 4],), "tensor2d() requires shape to be provided when `values` are a flat array"),
])
def test_ranked_constructors_check_as_tfjs(make, args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(*args)
