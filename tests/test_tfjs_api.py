"""The TF.js API as TF.js users write it: camelCase names at module level and as methods
(from one table), TF.js's backend name 'cpu', clone, data/array, tensor5d/tensor6d."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import gpugrad as tf
from gpugrad.tensor import Tensor
from gpugrad.tfjs_names import METHOD_ONLY, NOT_TFJS, TFJS_NAMES

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
    assert found, f"{snake} (for {camel}) exists nowhere: fix the table in gpugrad/tfjs_names.py"


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
                         f"gpugrad/tfjs_names.py (or a reason in NOT_TFJS): {missing}")


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
